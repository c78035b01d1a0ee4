//! Emails per second down one SMTP connection: lettre 0.11.23's pooled `AsyncSmtpTransport`
//! against the mailer's own session (`draftr_notifications::smtp`, `TCP_NODELAY`), in one run,
//! to the same local SMTP listener, alternating rounds so machine noise hits both alike.
//!
//! `cargo bench --bench smtp`. Knobs: `BENCH_EMAILS` (200 per round), `BENCH_ROUNDS` (3).

use std::time::{Duration, Instant};

use draftr_notifications::smtp::{SmtpSender, SmtpTarget};
use draftr_test_support::smtp as smtp_sink;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn message(i: usize) -> Message {
    let from: Mailbox = "Draftr <bookings@draftr.test>".parse().unwrap();
    Message::builder()
        .from(from)
        .to(format!("guest{i}@bench.test").parse().unwrap())
        .subject("Your stay at Harbour flat is confirmed")
        .message_id(Some(format!("<{i}@bench.draftr>")))
        .multipart(MultiPart::alternative_plain_html(
            "Hello,\nyour booking is confirmed.\n".repeat(20),
            "<p>Hello,</p><p>your booking is confirmed.</p>".repeat(20),
        ))
        .unwrap()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let emails = env_usize("BENCH_EMAILS", 200);
    let rounds = env_usize("BENCH_ROUNDS", 3);
    let sink = smtp_sink::SmtpSink::start().await;
    let lettre_pool = AsyncSmtpTransport::<Tokio1Executor>::from_url(&sink.url)?.build();
    let ours = SmtpSender::new(SmtpTarget::from_url(&sink.url)?, Duration::from_secs(30));
    // Warm both connections, so neither round pays for a connect.
    lettre_pool.send(message(0)).await?;
    let m = message(0);
    ours.send(m.envelope(), &m.formatted()).await?;

    let (mut lettre_total, mut ours_total) = (Duration::ZERO, Duration::ZERO);
    for round in 1..=rounds {
        let started = Instant::now();
        for i in 0..emails {
            lettre_pool.send(message(i)).await?;
        }
        let lettre_took = started.elapsed();
        let started = Instant::now();
        for i in 0..emails {
            let m = message(i);
            ours.send(m.envelope(), &m.formatted()).await?;
        }
        let ours_took = started.elapsed();
        println!(
            "round {round}: lettre's transport {:.0} emails/s, draftr's session {:.0} emails/s",
            emails as f64 / lettre_took.as_secs_f64(),
            emails as f64 / ours_took.as_secs_f64()
        );
        lettre_total += lettre_took;
        ours_total += ours_took;
    }
    let sent = (emails * rounds) as f64;
    println!(
        "{} emails each, one connection, sequential: lettre's transport {:.0} emails/s ({:.1} ms each), draftr's session {:.0} emails/s ({:.1} ms each): {:.1}× the throughput",
        emails * rounds,
        sent / lettre_total.as_secs_f64(),
        lettre_total.as_secs_f64() * 1000.0 / sent,
        sent / ours_total.as_secs_f64(),
        ours_total.as_secs_f64() * 1000.0 / sent,
        lettre_total.as_secs_f64() / ours_total.as_secs_f64()
    );
    assert_eq!(sink.messages().len(), 2 * (1 + emails * rounds));
    ours.close().await;
    Ok(())
}
