//! A real SMTP listener for the tests: speaks enough of RFC 5321 for lettre, keeps every
//! message it accepts, and can be "down" (refuses with 421), "stalled" (stops answering in the
//! middle of a session) or refuse every recipient (550) on demand.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Clone)]
pub struct SmtpSink {
    pub url: String,
    messages: Arc<Mutex<Vec<String>>>,
    down: Arc<AtomicBool>,
    stalled: Arc<AtomicBool>,
    refusing: Arc<AtomicBool>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let sink = Self {
            url,
            messages: Arc::default(),
            down: Arc::default(),
            stalled: Arc::default(),
            refusing: Arc::default(),
        };
        let s = sink.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = s.session(socket).await;
                });
            }
        });
        sink
    }

    /// While down, every connection and command is refused with 421.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// While stalled, a `MAIL` command gets no reply at all: the session hangs (as with a
    /// server that stopped answering) until the client gives up and closes it.
    pub fn set_stalled(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::SeqCst);
    }

    /// While refusing, every `RCPT TO` gets 550 (no such mailbox).
    pub fn set_refusing(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::SeqCst);
    }

    pub fn messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }

    pub fn message_ids(&self) -> Vec<String> {
        self.messages()
            .iter()
            .filter_map(|m| header(m, "Message-ID"))
            .collect()
    }

    async fn session(&self, socket: tokio::net::TcpStream) -> std::io::Result<()> {
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read).lines();
        if self.down.load(Ordering::SeqCst) {
            write.write_all(b"421 sink unavailable\r\n").await?;
            return Ok(());
        }
        write.write_all(b"220 sink ESMTP\r\n").await?;
        while let Some(line) = lines.next_line().await? {
            if self.down.load(Ordering::SeqCst) {
                write.write_all(b"421 sink unavailable\r\n").await?;
                return Ok(());
            }
            let verb = line
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            if verb == "MAIL" && self.stalled.load(Ordering::SeqCst) {
                while lines.next_line().await?.is_some() {}
                return Ok(());
            }
            match verb.as_str() {
                "RCPT" if self.refusing.load(Ordering::SeqCst) => {
                    write.write_all(b"550 5.1.1 no such mailbox\r\n").await?
                }
                "EHLO" | "HELO" => write.write_all(b"250-sink\r\n250 8BITMIME\r\n").await?,
                "DATA" => {
                    write.write_all(b"354 go ahead\r\n").await?;
                    let mut body = String::new();
                    while let Some(l) = lines.next_line().await? {
                        if l == "." {
                            break;
                        }
                        body.push_str(l.strip_prefix('.').unwrap_or(&l));
                        body.push_str("\r\n");
                    }
                    self.messages.lock().unwrap().push(body);
                    write.write_all(b"250 queued\r\n").await?;
                }
                "QUIT" => {
                    write.write_all(b"221 bye\r\n").await?;
                    return Ok(());
                }
                _ => write.write_all(b"250 OK\r\n").await?,
            }
        }
        Ok(())
    }
}

/// A header's value in a raw message (first occurrence, unfolded).
pub fn header(message: &str, name: &str) -> Option<String> {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    message
        .lines()
        .take_while(|l| !l.is_empty())
        .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
        .map(|l| l[prefix.len()..].trim().to_owned())
}
