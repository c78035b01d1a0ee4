//! A graphql-ws (graphql-transport-ws) client for the subscription tests.

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
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
        }
        let (mut socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|e| e.to_string())?;
        let payload = match token {
            Some(t) => json!({ "authorization": format!("Bearer {t}") }),
            None => json!({}),
        };
        socket
            .send(Message::text(
                json!({ "type": "connection_init", "payload": payload }).to_string(),
            ))
            .await
            .map_err(|e| e.to_string())?;
        let mut client = Self { socket };
        match client.receive(Duration::from_secs(5)).await {
            Some(m) if m["type"] == "connection_ack" => Ok(client),
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
                Message::Close(frame) => {
                    return Some(
                        json!({ "type": "close", "reason": frame.map(|f| f.reason.to_string()) }),
                    );
                }
                _ => continue,
            }
        }
    }

    /// The next `next` payload (a subscription result) within `wait`.
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
