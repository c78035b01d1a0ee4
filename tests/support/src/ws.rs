//! A graphql-ws (graphql-transport-ws) client for the subscription tests: the usual
//! connect-and-subscribe, and the raw steps the socket's own tests need (open without
//! `connection_init`, ask for the legacy `graphql-ws` subprotocol, read messages unanswered,
//! read the close frame's code and reason).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct WsClient {
    socket: Socket,
}

impl WsClient {
    /// Connects and initialises; `Err` carries why the server refused.
    pub async fn connect(url: &str, token: Option<&str>) -> Result<Self, String> {
        Self::connect_from(url, token, None).await
    }

    /// [`WsClient::connect`] as a browser page on `origin` would (with its `Origin` header).
    pub async fn connect_from(
        url: &str,
        token: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Self, String> {
        let mut client = Self::open_with(url, "graphql-transport-ws", origin).await?;
        client.init(token).await?;
        Ok(client)
    }

    /// Opens the socket (graphql-transport-ws) and sends nothing.
    pub async fn open(url: &str) -> Result<Self, String> {
        Self::open_with(url, "graphql-transport-ws", None).await
    }

    /// Opens the socket asking for `protocol` (`graphql-transport-ws`, or `graphql-ws` for the
    /// legacy subscriptions-transport-ws), from `origin` if given, and sends nothing.
    pub async fn open_with(
        url: &str,
        protocol: &str,
        origin: Option<&str>,
    ) -> Result<Self, String> {
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocol.parse().unwrap());
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
        }
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self { socket })
    }

    /// Sends `connection_init` (with the token, if any) and waits for the ack.
    pub async fn init(&mut self, token: Option<&str>) -> Result<(), String> {
        let payload = match token {
            Some(t) => json!({ "authorization": format!("Bearer {t}") }),
            None => json!({}),
        };
        self.send_text(json!({ "type": "connection_init", "payload": payload }).to_string())
            .await;
        match self.receive(Duration::from_secs(5)).await {
            Some(m) if m["type"] == "connection_ack" => Ok(()),
            other => Err(format!("not acknowledged: {other:?}")),
        }
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.socket
            .send(Message::text(
                json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } })
                    .to_string(),
            ))
            .await
            .unwrap();
    }

    /// Sends a raw text message.
    pub async fn send_text(&mut self, text: String) {
        let _ = self.socket.send(Message::text(text)).await;
    }

    /// Ends subscription `id` (the client's `complete`).
    pub async fn complete(&mut self, id: &str) {
        self.send_text(json!({ "id": id, "type": "complete" }).to_string())
            .await;
    }

    /// The code and reason of the close frame the server sends within `wait`, skipping (and
    /// not answering) anything else; `None` if it sends none in time (or drops the connection
    /// without one).
    pub async fn close_frame(&mut self, wait: Duration) -> Option<(u16, String)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??
                .ok()?
            {
                Message::Close(frame) => {
                    return frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                }
                _ => continue,
            }
        }
    }

    /// The next text message as JSON within `wait`, whatever it is (pings are returned, not
    /// answered); a close frame is `{ "type": "close", "code", "reason" }`.
    pub async fn raw_message(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??
                .ok()?
            {
                Message::Text(t) => return serde_json::from_str(&t).ok(),
                Message::Close(frame) => return Some(close_json(frame)),
                _ => continue,
            }
        }
    }

    /// Whether the server closes (or drops) the connection within `wait`; anything it sends
    /// meanwhile is skipped.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// The next protocol message (pings answered), or `None` after `wait` or on close.
    async fn receive(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??
                .ok()?;
            match msg {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(&t).ok()?;
                    if v["type"] == "ping" {
                        let _ = self
                            .socket
                            .send(Message::text(json!({ "type": "pong" }).to_string()))
                            .await;
                        continue;
                    }
                    return Some(v);
                }
                Message::Close(frame) => return Some(close_json(frame)),
                _ => continue,
            }
        }
    }

    /// The next `next` payload (a subscription result) within `wait`; an `error` message or
    /// the close frame (`{ "type": "close", "code", "reason" }`) instead if one comes first.
    pub async fn next_result(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let m = self.receive(left).await?;
            match m["type"].as_str() {
                Some("next") => return Some(m["payload"].clone()),
                Some("error") | Some("close") => return Some(m),
                _ => continue,
            }
        }
    }
}

fn close_json(frame: Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> Value {
    match frame {
        Some(f) => {
            json!({ "type": "close", "code": u16::from(f.code), "reason": f.reason.to_string() })
        }
        None => json!({ "type": "close", "code": null, "reason": null }),
    }
}
