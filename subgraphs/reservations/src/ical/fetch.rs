//! Fetching an imported feed without letting a feed URL reach inside the network.
//!
//! Only `http` and `https` URLs without credentials are taken. Every address the fetch
//! connects to must be public ([`is_public`]) or in the allow-list (`ical.allow_networks`):
//! an IP-literal host is checked before the request and on each redirect; a host name is
//! resolved by [`CheckedResolver`], reqwest's resolver for this client, which hands reqwest
//! only the checked addresses, so the address checked is the one connected to (no second,
//! rebindable lookup). No proxy from the environment is used. Redirects are bounded, the body
//! is counted while it streams and refused past the limit, and the whole fetch has a deadline.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use super::IcalSettings;

/// The longest feed URL.
pub const MAX_URL_CHARS: usize = 2048;

/// Why a fetch (or a URL) was refused or failed. The message is what the host sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    BadUrl(String),
    #[error("the feed's address {0} is not public (loopback, private, link-local or reserved)")]
    Blocked(String),
    #[error("the feed's host {0} could not be resolved")]
    Unresolved(String),
    #[error("the feed answered HTTP {0}")]
    Status(u16),
    #[error("the feed is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the feed is not UTF-8 text")]
    NotText,
    #[error("the feed did not answer in time")]
    Timeout,
    #[error("the feed redirected more than {0} times")]
    TooManyRedirects(usize),
    #[error("fetching the feed failed: {0}")]
    Network(String),
}

/// Whether `ip` is a public unicast address: not unspecified, loopback, private (10/8,
/// 172.16/12, 192.168/16), CGNAT (100.64/10), link-local (169.254/16, fe80::/10),
/// unique-local (fc00::/7), multicast, broadcast, documentation, benchmarking or reserved.
/// IPv4 inside IPv6 (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`,
/// 6to4 `2002::/16`) is judged by the IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                  // "this network", unspecified
        || a == 10                            // private
        || a == 127                           // loopback
        || (a == 100 && (64..128).contains(&b)) // CGNAT, 100.64/10
        || (a == 169 && b == 254)             // link-local
        || (a == 172 && (16..32).contains(&b)) // private, 172.16/12
        || (a == 192 && b == 168)             // private
        || (a == 192 && b == 0 && c == 0)     // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)     // TEST-NET-1
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100)  // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)   // TEST-NET-3
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // IPv4-compatible (deprecated) ::a.b.c.d, and :: / ::1 themselves.
    if s[..6] == [0; 6] {
        return s[6] != 0
            && is_public_v4(Ipv4Addr::new(
                (s[6] >> 8) as u8,
                s[6] as u8,
                (s[7] >> 8) as u8,
                s[7] as u8,
            ));
    }
    // NAT64 64:ff9b::/96.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ));
    }
    // 6to4 2002:a.b.c.d::/48.
    if s[0] == 0x2002 {
        return is_public_v4(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    !((s[0] & 0xfe00) == 0xfc00            // unique-local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80        // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0        // site-local (deprecated) fec0::/10
        || (s[0] & 0xff00) == 0xff00        // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] == 0)    // Teredo
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])) // discard 100::/64
}

/// Whether a fetch may connect to `ip`: public, or allowed by the settings.
pub fn may_connect(ip: IpAddr, allow: &[IpNet]) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    is_public(ip) || allow.iter().any(|n| n.contains(&ip))
}

/// Checks the shape of a feed URL and, for an IP-literal host, its address; the URL parsed.
pub fn check_url(raw: &str, allow: &[IpNet]) -> Result<Url, FetchError> {
    let raw = raw.trim();
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(FetchError::BadUrl(format!(
            "the URL can be at most {MAX_URL_CHARS} characters"
        )));
    }
    // webcal:// is how calendar apps spell an http feed.
    let raw = match raw.get(..9) {
        Some(p) if p.eq_ignore_ascii_case("webcal://") => format!("https://{}", &raw[9..]),
        _ => raw.to_owned(),
    };
    let url =
        Url::parse(&raw).map_err(|e| FetchError::BadUrl(format!("the URL is not valid: {e}")))?;
    // Escaping can lengthen it: the stored form must fit too.
    if url.as_str().len() > MAX_URL_CHARS {
        return Err(FetchError::BadUrl(format!(
            "the URL can be at most {MAX_URL_CHARS} characters"
        )));
    }
    check_parsed(&url, allow)?;
    Ok(url)
}

fn check_parsed(url: &Url, allow: &[IpNet]) -> Result<(), FetchError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::BadUrl(
            "the URL must start with http:// or https://".into(),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FetchError::BadUrl(
            "the URL must not contain a user name or password".into(),
        ));
    }
    let ip = match url.host() {
        None => return Err(FetchError::BadUrl("the URL has no host".into())),
        Some(Host::Domain(_)) => return Ok(()),
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
    };
    if may_connect(ip, allow) {
        Ok(())
    } else {
        Err(FetchError::Blocked(ip.to_string()))
    }
}

/// The DNS resolver of feed fetches: the system's lookup, keeping only addresses a fetch may
/// connect to (an error when none is left).
#[derive(Debug, Clone)]
pub struct CheckedResolver {
    allow: Arc<Vec<IpNet>>,
    /// A lookup that takes longer is a failed one (the system resolver has no deadline).
    timeout: Duration,
}

impl CheckedResolver {
    /// The addresses of `host` a fetch may connect to.
    pub async fn lookup(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, FetchError> {
        let found: Vec<SocketAddr> =
            tokio::time::timeout(self.timeout, tokio::net::lookup_host((host, port)))
                .await
                .map_err(|_| FetchError::Unresolved(host.to_owned()))?
                .map_err(|_| FetchError::Unresolved(host.to_owned()))?
                .collect();
        if found.is_empty() {
            return Err(FetchError::Unresolved(host.to_owned()));
        }
        let allowed: Vec<SocketAddr> = found
            .iter()
            .copied()
            .filter(|a| may_connect(a.ip(), &self.allow))
            .collect();
        if allowed.is_empty() {
            return Err(FetchError::Blocked(format!("{} ({host})", found[0].ip())));
        }
        Ok(allowed)
    }
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        Box::pin(async move {
            let addrs = this
                .lookup(name.as_str(), 0)
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Fetches feeds under the settings' rules.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    resolver: CheckedResolver,
    allow: Arc<Vec<IpNet>>,
    max_bytes: usize,
    max_redirects: usize,
}

impl Fetcher {
    pub fn new(settings: &IcalSettings) -> anyhow::Result<Self> {
        let allow = Arc::new(settings.allow_networks.clone());
        let timeout = Duration::from_millis(settings.fetch_timeout_ms.max(1));
        let resolver = CheckedResolver {
            allow: allow.clone(),
            timeout,
        };
        let max_redirects = settings.max_redirects;
        let policy_allow = allow.clone();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max_redirects {
                return attempt.error(FetchError::TooManyRedirects(max_redirects));
            }
            match check_parsed(attempt.url(), &policy_allow) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(e),
            }
        });
        let client = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(resolver.clone()))
            .redirect(policy)
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!(
                "Draftr-calendar-import/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()?;
        Ok(Self {
            client,
            resolver,
            allow,
            max_bytes: settings.max_feed_bytes,
            max_redirects,
        })
    }

    /// Checks a URL a host gives: its shape, and that its host resolves to addresses a fetch
    /// may connect to. The URL as it will be fetched.
    pub async fn check(&self, raw: &str) -> Result<Url, FetchError> {
        let url = check_url(raw, &self.allow)?;
        if let Some(Host::Domain(host)) = url.host() {
            self.resolver
                .lookup(host, url.port_or_known_default().unwrap_or(443))
                .await?;
        }
        Ok(url)
    }

    /// The feed's body, as text.
    pub async fn fetch(&self, raw: &str) -> Result<String, FetchError> {
        let url = check_url(raw, &self.allow)?;
        let mut response = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "text/calendar, */*;q=0.5")
            .send()
            .await
            .map_err(|e| self.explain(e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > self.max_bytes as u64)
        {
            return Err(FetchError::TooLarge(self.max_bytes));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.explain(e))? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(FetchError::TooLarge(self.max_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| FetchError::NotText)
    }

    /// The [`FetchError`] behind a reqwest error (ours, from the resolver or the redirect
    /// policy, when there is one).
    fn explain(&self, e: reqwest::Error) -> FetchError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = source {
            if let Some(ours) = s.downcast_ref::<FetchError>() {
                return ours.clone();
            }
            source = s.source();
        }
        if e.is_timeout() {
            FetchError::Timeout
        } else if e.is_redirect() {
            FetchError::TooManyRedirects(self.max_redirects)
        } else {
            FetchError::Network(without_url(&e))
        }
    }
}

/// The error's text without the URL reqwest adds (which may hold the feed's own secret).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the body could not be read"
    } else if e.is_request() {
        "the request failed"
    } else {
        "network error"
    };
    kind.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for s in [
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "127.0.0.1",
            "127.8.9.10",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "192.0.2.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:c0a8:101::1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip(s)), "{s} is not public");
        }
        for s in [
            "8.8.8.8",
            "1.1.1.1",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.1.1",
            "192.169.0.1",
            "11.0.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(ip(s)), "{s} is public");
        }
    }

    #[test]
    fn the_allow_list_opens_what_it_names_only() {
        let allow: Vec<IpNet> = vec!["127.0.0.1/32".parse().unwrap()];
        assert!(may_connect(ip("127.0.0.1"), &allow));
        assert!(may_connect(ip("::ffff:127.0.0.1"), &allow), "mapped");
        assert!(!may_connect(ip("127.0.0.2"), &allow));
        assert!(!may_connect(ip("10.0.0.1"), &allow));
        assert!(!may_connect(ip("127.0.0.1"), &[]));
    }

    #[test]
    fn urls_are_checked() {
        let allow: Vec<IpNet> = Vec::new();
        let bad = |u: &str| check_url(u, &allow).unwrap_err();
        assert!(matches!(
            bad("ftp://example.com/a.ics"),
            FetchError::BadUrl(_)
        ));
        assert!(matches!(bad("file:///etc/passwd"), FetchError::BadUrl(_)));
        assert!(matches!(bad("not a url"), FetchError::BadUrl(_)));
        assert!(matches!(
            bad("http://user:pw@example.com/"),
            FetchError::BadUrl(_)
        ));
        assert!(matches!(
            bad("http://127.0.0.1:8080/a.ics"),
            FetchError::Blocked(_)
        ));
        assert!(matches!(bad("http://[::1]/a.ics"), FetchError::Blocked(_)));
        assert!(matches!(
            bad("http://[::ffff:10.0.0.1]/"),
            FetchError::Blocked(_)
        ));
        assert!(matches!(
            bad("http://169.254.169.254/latest"),
            FetchError::Blocked(_)
        ));
        assert!(
            matches!(bad("http://2130706433/"), FetchError::Blocked(_)),
            "decimal 127.0.0.1"
        );
        assert!(matches!(
            bad(&format!("https://example.com/{}", "a".repeat(2100))),
            FetchError::BadUrl(_)
        ));
        assert_eq!(
            check_url("webcal://example.com/a.ics", &allow)
                .unwrap()
                .as_str(),
            "https://example.com/a.ics"
        );
        assert!(check_url("https://example.com/a.ics", &allow).is_ok());
        let escaped = format!("https://example.com/{}x", " ".repeat(1_000));
        assert!(
            matches!(bad(&escaped), FetchError::BadUrl(_)),
            "too long once escaped"
        );
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused() {
        let r = CheckedResolver {
            allow: Arc::new(Vec::new()),
            timeout: Duration::from_secs(5),
        };
        assert!(matches!(
            r.lookup("localhost", 80).await,
            Err(FetchError::Blocked(_))
        ));
        let r = CheckedResolver {
            allow: Arc::new(vec![
                "127.0.0.0/8".parse().unwrap(),
                "::1/128".parse().unwrap(),
            ]),
            timeout: Duration::from_secs(5),
        };
        assert!(r.lookup("localhost", 80).await.is_ok());
    }

    /// A server on 127.0.0.1 with the shapes of answer a feed can take; its base URL.
    async fn server() -> String {
        use axum::body::Body;
        use axum::routing::get;
        let big = || "x".repeat(2_000);
        let app = axum::Router::new()
            .route("/ok", get(|| async { "BEGIN:VCALENDAR" }))
            .route("/big", get(move || async move { big() }))
            .route(
                "/big-chunked",
                get(|| async {
                    let chunks = (0..20).map(|_| Ok::<_, std::io::Error>("y".repeat(100)));
                    Body::from_stream(futures::stream::iter(chunks))
                }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .route(
                "/gone",
                get(|| async { (axum::http::StatusCode::GONE, "gone") }),
            )
            .route(
                "/loop",
                get(|| async { axum::response::Redirect::temporary("/loop") }),
            )
            .route(
                "/private",
                get(|| async { axum::response::Redirect::temporary("http://192.168.1.1/x") }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn fetches_are_bounded_in_size_time_and_redirects() {
        let base = server().await;
        let settings = IcalSettings {
            allow_networks: vec!["127.0.0.1/32".parse().unwrap()],
            max_feed_bytes: 1_000,
            fetch_timeout_ms: 500,
            ..IcalSettings::default()
        };
        let f = Fetcher::new(&settings).unwrap();
        assert_eq!(
            f.fetch(&format!("{base}/ok")).await.unwrap(),
            "BEGIN:VCALENDAR"
        );
        assert_eq!(
            f.fetch(&format!("{base}/big")).await,
            Err(FetchError::TooLarge(1_000))
        );
        assert_eq!(
            f.fetch(&format!("{base}/big-chunked")).await,
            Err(FetchError::TooLarge(1_000)),
            "counted while streaming, with no Content-Length"
        );
        assert_eq!(
            f.fetch(&format!("{base}/slow")).await,
            Err(FetchError::Timeout)
        );
        assert_eq!(
            f.fetch(&format!("{base}/gone")).await,
            Err(FetchError::Status(410))
        );
        assert_eq!(
            f.fetch(&format!("{base}/loop")).await,
            Err(FetchError::TooManyRedirects(3))
        );
        assert_eq!(
            f.fetch(&format!("{base}/private")).await,
            Err(FetchError::Blocked("192.168.1.1".into())),
            "each redirect is checked again"
        );
        // Without the allow-list the same server is out of reach, by IP and by name.
        let f = Fetcher::new(&IcalSettings::default()).unwrap();
        assert!(matches!(
            f.fetch(&format!("{base}/ok")).await,
            Err(FetchError::Blocked(_))
        ));
        let by_name = base.replace("127.0.0.1", "localhost");
        assert!(matches!(
            f.fetch(&format!("{by_name}/ok")).await,
            Err(FetchError::Blocked(_))
        ));
    }
}
