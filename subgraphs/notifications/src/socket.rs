//! The subscription socket, `GET /ws`: graphql-ws (subprotocol `graphql-transport-ws`,
//! <https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md>) and the legacy
//! subscriptions-transport-ws (subprotocol `graphql-ws`), made safe against clients that would
//! hold the server's resources for nothing or outlive their session.
//!
//! async-graphql's [`async_graphql::http::WebSocket`] still executes the subscriptions; this
//! module drives it instead of `async_graphql_axum::GraphQLWebSocket::serve`, because that
//! loop, as of 7.2.1, waits for `connection_init` forever, sends no pings (its
//! `keepalive_timeout` closes a healthy but quiet client with 3008), closes a refused
//! `connection_init` with 1002, lets a second `subscribe` with an active id silently replace
//! the first, answers a `subscribe` before the ack with 1011, and checks the token once, so a
//! socket would outlive a `logout` and the token's expiry. Here one task per socket runs a
//! `tokio::select!` over the client's frames, what async-graphql wants to send, and timers;
//! every client message is parsed and judged here first, and only what passes is handed to
//! async-graphql (through a channel, as parsed messages).
//!
//! What a client gets (`SocketSettings`, `DRAFTR_NOTIFICATIONS__SOCKET__…`):
//!
//! | close code | when |
//! |---|---|
//! | 4400 `Bad request: …` | a message that is not a protocol message |
//! | 4401 `Unauthorized` | `subscribe` before the `connection_ack` |
//! | 4403 `Forbidden: …` | `connection_init` without a token or with a refused one; one connection too many for the user on this replica; the token expired (at its `exp`); the session was revoked (`logout`, seen within `session_check_ms`) |
//! | 4408 `Connection initialisation timeout` | no `connection_init` within `init_timeout_ms` |
//! | 4409 `Subscriber for <id> already exists` | `subscribe` with an id that is active (graphql-transport-ws; the legacy protocol replaces, as it always has) |
//! | 4429 `Too many initialisation requests` | a second `connection_init` |
//! | 3008 `keepalive timeout: …` | nothing at all received for `idle_timeout_ms` (the server pings every `ping_interval_ms`) |
//! | 1011 | the revocation list cannot be consulted (verification fails closed; clients retry) |
//!
//! A `subscribe` over `max_subscriptions_per_connection` is answered with an `error` message
//! for its id (a GraphQL error with `extensions.code` `RATE_LIMITED`); the socket stays open.
//! On the legacy protocol a socket closed before its ack is first sent a `connection_error`
//! with the reason, as async-graphql did, since legacy clients look for that message.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_graphql::Data;
use async_graphql::http::{
    ALL_WEBSOCKET_PROTOCOLS, ClientMessage, WebSocket as Subscriptions, WebSocketProtocols,
    WsMessage,
};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use draftr_common::jwt::{Claims, TokenRejection, TokenVerifier};
use draftr_common::{ErrorCode, Viewer};
use futures::{SinkExt, Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep, interval_at, sleep_until};
use tokio_stream::wrappers::ReceiverStream;
use uuid::Uuid;

use draftr_common::metrics::{IntGauge, NotificationMetrics};

use crate::config::SocketSettings;
use crate::graphql::NotificationsSchema;

/// Per-connection buffer of the subscription socket; messages larger than it still pass.
const WS_BUFFER: usize = 4 * 1024;
/// The largest message a subscription client may send (a subscribe with its query).
pub const WS_MAX_MESSAGE: usize = 64 * 1024;
/// Client messages judged here but not yet taken by async-graphql. It takes them as soon as it
/// is polled, which the loop does before reading the next frame, so this only fills up if
/// something is badly wrong; then the socket is closed rather than the queue grown.
const INPUT_QUEUE: usize = 64;
/// How long a closing socket waits for the client's close frame (so that ours is not lost to
/// a TCP reset) and for its own close frame to go out.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// The longest close reason a close frame can carry (125 bytes of payload minus the code).
const MAX_REASON: usize = 123;

/// What `GET /ws` needs: built once per replica by [`routes`].
#[derive(Clone)]
struct SocketState {
    schema: NotificationsSchema,
    verifier: Arc<TokenVerifier>,
    /// Browser origins that may open a socket (see `NotificationsSettings::allowed_origins`).
    origins: regex::Regex,
    limits: Limits,
    connections: Arc<Connections>,
    /// `draftr_live_connections` and `draftr_live_subscriptions`.
    metrics: NotificationMetrics,
}

/// [`SocketSettings`] as durations.
#[derive(Debug, Clone, Copy)]
struct Limits {
    init_timeout: Duration,
    max_connections_per_user: usize,
    max_subscriptions: usize,
    ping_interval: Duration,
    idle_timeout: Duration,
    session_check: Duration,
}

impl From<&SocketSettings> for Limits {
    fn from(s: &SocketSettings) -> Self {
        Self {
            init_timeout: Duration::from_millis(s.init_timeout_ms),
            max_connections_per_user: s.max_connections_per_user,
            max_subscriptions: s.max_subscriptions_per_connection,
            ping_interval: Duration::from_millis(s.ping_interval_ms),
            idle_timeout: Duration::from_millis(s.idle_timeout_ms),
            session_check: Duration::from_millis(s.session_check_ms),
        }
    }
}

/// The `/ws` route, with its state. `allowed_origins` is a regular expression the `Origin`
/// header of a browser's upgrade must match.
pub fn routes(
    schema: NotificationsSchema,
    verifier: Arc<TokenVerifier>,
    allowed_origins: &str,
    settings: &SocketSettings,
    metrics: NotificationMetrics,
) -> anyhow::Result<axum::Router> {
    settings.validate()?;
    let origins = regex::Regex::new(allowed_origins).map_err(|e| {
        anyhow::anyhow!("notifications.allowed_origins is not a regular expression: {e}")
    })?;
    Ok(axum::Router::new()
        .route("/ws", get(upgrade))
        .with_state(SocketState {
            schema,
            verifier,
            origins,
            limits: Limits::from(settings),
            connections: Arc::default(),
            metrics,
        }))
}

/// `GET /ws`. The token may come on the upgrade request's `Authorization` header or in
/// `connection_init` as `{ "authorization": "Bearer …" }`; a connection without a valid one
/// is refused.
///
/// A browser page from an origin that is not allowed is refused before the upgrade (403): a
/// WebSocket is not subject to CORS, so without this any site could open one with a token it
/// got hold of, or probe the endpoint from a visitor's browser. A token on the upgrade
/// request that is refused gets 401 before any socket exists.
async fn upgrade(
    State(state): State<SocketState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Some(origin) = headers.get(header::ORIGIN)
        && !origin.to_str().is_ok_and(|o| state.origins.is_match(o))
    {
        tracing::info!(origin = ?origin, "subscription socket refused: origin not allowed");
        return (
            StatusCode::FORBIDDEN,
            "this origin may not open a subscription socket",
        )
            .into_response();
    }
    // The client's first protocol this server speaks, as the upgrade response will name it.
    let Some(protocol) = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').find_map(|p| p.trim().parse().ok()))
    else {
        return (
            StatusCode::BAD_REQUEST,
            "ask for the graphql-transport-ws (or graphql-ws) subprotocol",
        )
            .into_response();
    };
    let header_token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(h) = &header_token
        && let Viewer::Rejected(_) = state.verifier.viewer_from_header(Some(h)).await
    {
        return (StatusCode::UNAUTHORIZED, "invalid or revoked token").into_response();
    }
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        // Clients only send protocol messages (init, subscribe, ping), a few hundred bytes:
        // tungstenite's defaults (128 KiB buffers, 64 MiB messages) would cost 128 KiB per idle
        // subscriber and let anyone, before signing in, make the server hold 64 MiB.
        .read_buffer_size(WS_BUFFER)
        .write_buffer_size(WS_BUFFER)
        .max_message_size(WS_MAX_MESSAGE)
        .max_frame_size(WS_MAX_MESSAGE)
        .on_upgrade(move |socket| serve(socket, state, protocol, header_token))
}

/// Open sockets per user on this replica. Only signed-in sockets count; one that has not sent
/// `connection_init` yet is bounded by `init_timeout` instead.
#[derive(Default)]
struct Connections(Mutex<HashMap<Uuid, usize>>);

impl Connections {
    /// A place for one more socket of `user`, or `None` if they already have `max`.
    fn try_acquire(self: &Arc<Self>, user: Uuid, max: usize) -> Option<ConnectionSlot> {
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(user).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ConnectionSlot {
            connections: self.clone(),
            user,
        })
    }

    #[cfg(test)]
    fn open(&self, user: Uuid) -> usize {
        let open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&user).copied().unwrap_or(0)
    }
}

/// One socket's place in [`Connections`], given back when the socket ends, however it ends.
struct ConnectionSlot {
    connections: Arc<Connections>,
    user: Uuid,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self
            .connections
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Entry::Occupied(mut n) = open.entry(self.user) {
            *n.get_mut() -= 1;
            if *n.get() == 0 {
                n.remove();
            }
        }
    }
}

/// How a socket ends.
enum End {
    /// The server closes it with this code and reason.
    Close(u16, String),
    /// The client went away (closed, dropped, stopped reading); nothing more to say.
    Gone(&'static str),
}

fn forbidden(why: impl std::fmt::Display) -> End {
    End::Close(4403, format!("Forbidden: {why}"))
}

/// Why a token is refused, as a close. A revocation list that cannot be consulted is not the
/// client's fault: 1011, which clients retry, rather than 4403, which tells them to sign in.
fn refused(why: &TokenRejection) -> End {
    match why {
        TokenRejection::Invalid => forbidden("the access token is not valid; sign in again"),
        TokenRejection::Expired => forbidden("token expired; refresh it and connect again"),
        TokenRejection::Revoked => forbidden("session revoked; sign in again"),
        TokenRejection::Unverifiable => End::Close(
            1011,
            "the session cannot be verified right now; try again".to_owned(),
        ),
    }
}

/// The reason for 4400. serde's own message may quote what the client sent (a token pasted in
/// the wrong field, say), and the reason is logged; so only the kind of fault and where.
fn bad_request(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "not JSON",
        _ => "not a graphql-ws message",
    };
    format!(
        "Bad request: {what} (line {}, column {})",
        e.line(),
        e.column()
    )
}

/// Cuts `reason` to what a close frame can carry, on a character boundary.
fn close_reason(mut reason: String) -> String {
    if reason.len() > MAX_REASON {
        let mut cut = MAX_REASON;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    reason
}

/// How long until the token's `exp`; zero once it has passed.
fn until_expiry(claims: &Claims) -> Duration {
    let left_ms = claims
        .exp
        .saturating_mul(1_000)
        .saturating_sub(chrono::Utc::now().timestamp_millis());
    Duration::from_millis(u64::try_from(left_ms).unwrap_or(0))
}

/// The user a socket was opened for, once `connection_init` is accepted.
struct Session {
    claims: Claims,
    /// `Bearer …`, verified again every `session_check`. Never logged.
    authorization: String,
    _slot: ConnectionSlot,
}

/// A subscription id as this socket sees it.
#[derive(Default)]
struct Operation {
    /// The client considers it running: a second `subscribe` with this id is a duplicate.
    active: bool,
    /// Subscriptions with this id handed to async-graphql whose `complete` has not come back
    /// yet (two for a moment when the client completes an id and subscribes with it again).
    running: u32,
}

/// What async-graphql sends, as far as this module needs to know.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
}

/// One socket's state.
struct Connection {
    state: SocketState,
    protocol: WebSocketProtocols,
    /// A token from the upgrade request's header, used if `connection_init` carries none.
    header_token: Option<String>,
    /// Judged client messages on their way to async-graphql.
    /// Boxed: a channel allocates its slots up front, and a `ClientMessage` (a whole GraphQL
    /// request) is large; idle sockets are meant to be cheap.
    input: mpsc::Sender<Box<ClientMessage>>,
    /// The signed-in viewer, handed to async-graphql's `on_connection_init`.
    viewer: Option<oneshot::Sender<Viewer>>,
    init_received: bool,
    acked: bool,
    session: Option<Session>,
    operations: HashMap<String, Operation>,
    /// Subscriptions async-graphql holds for this socket (the sum of `Operation::running`).
    running: Held,
    init_deadline: Pin<Box<Sleep>>,
    expiry: Pin<Box<Sleep>>,
    idle: Pin<Box<Sleep>>,
    pings: Interval,
    checks: Interval,
}

/// A count this socket holds in a gauge, given back when the socket ends, however it ends.
struct Held {
    n: usize,
    gauge: IntGauge,
}

impl Held {
    fn new(gauge: IntGauge) -> Self {
        Self { n: 0, gauge }
    }
    fn get(&self) -> usize {
        self.n
    }
    fn inc(&mut self) {
        self.n += 1;
        self.gauge.inc();
    }
    fn dec(&mut self) {
        if self.n > 0 {
            self.n -= 1;
            self.gauge.dec();
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.gauge.sub(i64::try_from(self.n).unwrap_or(i64::MAX));
    }
}

/// Runs one socket until it ends, then closes it with its code and logs why.
async fn serve(
    mut socket: WebSocket,
    state: SocketState,
    protocol: WebSocketProtocols,
    header_token: Option<String>,
) {
    let mut open = Held::new(state.metrics.live_connections.clone());
    open.inc();
    let connection_state_subscriptions = state.metrics.live_subscriptions.clone();
    let (input, queued) = mpsc::channel(INPUT_QUEUE);
    let (viewer, verified) = oneshot::channel::<Viewer>();
    let subscriptions = Subscriptions::from_message_stream(
        state.schema.clone(),
        ReceiverStream::new(queued).map(|message: Box<ClientMessage>| Ok(*message)),
        protocol,
    )
    // The token was verified (and the connection counted) before `connection_init` was
    // handed over; this only puts the viewer where the resolvers look for it.
    .on_connection_init(move |_| async move {
        let viewer = verified
            .await
            .map_err(|_| async_graphql::Error::new("connection_init was not verified"))?;
        let mut data = Data::default();
        data.insert(viewer);
        Ok(data)
    });
    let subscriptions = std::pin::pin!(subscriptions);

    let now = Instant::now();
    let limits = state.limits;
    let mut pings = interval_at(now + limits.ping_interval, limits.ping_interval);
    pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut checks = interval_at(now + limits.session_check, limits.session_check);
    checks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut connection = Connection {
        state,
        protocol,
        header_token,
        input,
        viewer: Some(viewer),
        init_received: false,
        acked: false,
        session: None,
        operations: HashMap::new(),
        running: Held::new(connection_state_subscriptions),
        init_deadline: Box::pin(sleep_until(now + limits.init_timeout)),
        expiry: Box::pin(sleep_until(now + limits.init_timeout)),
        idle: Box::pin(sleep_until(now + limits.idle_timeout)),
        pings,
        checks,
    };
    let end = match connection.run(&mut socket, subscriptions).await {
        Err(end) => end,
        Ok(never) => match never {},
    };
    let user = connection
        .session
        .as_ref()
        .map(|s| tracing::field::display(s.claims.sub));
    match end {
        End::Close(code, reason) => {
            let reason = close_reason(reason);
            if code == 1000 {
                tracing::debug!(
                    user.id = user,
                    code,
                    "subscription socket ended by the client"
                );
            } else {
                tracing::info!(user.id = user, code, reason = %reason, "subscription socket closed by the server");
            }
            // subscriptions-transport-ws tells a client why it was not connected with a
            // message (async-graphql did): legacy clients look for it, not at the close code.
            if protocol == WebSocketProtocols::SubscriptionsTransportWS
                && !connection.acked
                && code != 1000
            {
                let error = json!({ "type": "connection_error", "payload": { "message": reason } });
                let _ =
                    tokio::time::timeout(CLOSE_WAIT, socket.send(Message::text(error.to_string())))
                        .await;
            }
            close(&mut socket, code, reason).await;
        }
        End::Gone(why) => {
            tracing::debug!(
                user.id = user,
                why,
                "subscription socket ended by the client"
            );
            let _ = tokio::time::timeout(CLOSE_WAIT, socket.close()).await;
        }
    }
}

/// Sends the close frame, then waits briefly for the client's: a server that closes the TCP
/// connection with the client's messages still unread sends a reset, and the client may never
/// see the close frame (and its code) at all.
async fn close(socket: &mut WebSocket, code: u16, reason: String) {
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }));
    if let Ok(Ok(())) = tokio::time::timeout(CLOSE_WAIT, socket.send(frame)).await {
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            while let Some(Ok(message)) = socket.recv().await {
                if let Message::Close(_) = message {
                    break;
                }
            }
        })
        .await;
    }
}

impl Connection {
    /// Until the socket ends (the `Err`, which is all it ever returns).
    async fn run<S>(
        &mut self,
        socket: &mut WebSocket,
        mut subscriptions: Pin<&mut S>,
    ) -> Result<Infallible, End>
    where
        S: Stream<Item = WsMessage>,
    {
        loop {
            // Biased: timers first (cheap, and a busy socket must still time out), then what
            // async-graphql has to send (it also takes the queued client messages when
            // polled), then the client's next frame.
            tokio::select! {
                biased;
                _ = &mut self.init_deadline, if !self.init_received => {
                    return Err(End::Close(4408, "Connection initialisation timeout".to_owned()));
                }
                _ = &mut self.expiry, if self.session.is_some() => {
                    return Err(forbidden("token expired; refresh it and connect again"));
                }
                _ = &mut self.idle => {
                    return Err(End::Close(
                        3008,
                        format!(
                            "keepalive timeout: nothing received for {} ms",
                            self.state.limits.idle_timeout.as_millis()
                        ),
                    ));
                }
                _ = self.checks.tick(), if self.session.is_some() => {
                    self.check_session().await?;
                }
                _ = self.pings.tick() => {
                    self.ping(socket).await?;
                }
                out = subscriptions.next() => match out {
                    Some(WsMessage::Text(text)) => {
                        self.on_server_message(&text);
                        self.send(socket, Message::Text(text.into())).await?;
                    }
                    Some(WsMessage::Close(code, reason)) => return Err(End::Close(code, reason)),
                    // `connection_terminate` (the legacy protocol's goodbye).
                    None => return Err(End::Close(1000, String::new())),
                },
                frame = socket.recv() => {
                    let bytes = match frame {
                        None => return Err(End::Gone("the connection ended")),
                        Some(Err(_)) => {
                            return Err(End::Gone("the connection failed or sent too much"));
                        }
                        Some(Ok(Message::Close(_))) => return Err(End::Gone("the client closed")),
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                            self.touch();
                            continue;
                        }
                        Some(Ok(message)) => message.into_data(),
                    };
                    self.touch();
                    if let Some(reply) = self.on_client_message(&bytes).await? {
                        self.send(socket, Message::Text(reply.into())).await?;
                    }
                }
            }
        }
    }

    /// Something arrived: the client is alive.
    fn touch(&mut self) {
        let idle_timeout = self.state.limits.idle_timeout;
        self.idle.as_mut().reset(Instant::now() + idle_timeout);
    }

    /// Sends one message; a client that does not take it within the idle timeout has stopped
    /// reading, and is not allowed to hold this task (and its subscriptions) forever.
    async fn send(&self, socket: &mut WebSocket, message: Message) -> Result<(), End> {
        match tokio::time::timeout(self.state.limits.idle_timeout, socket.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::Gone("the connection failed")),
            Err(_) => Err(End::Gone("the client stopped reading")),
        }
    }

    /// The keepalive: graphql-ws clients answer a `ping` with a `pong`; legacy clients have no
    /// such message, so they get the legacy `ka` and a WebSocket ping frame, which browsers and
    /// WebSocket libraries answer on their own.
    async fn ping(&mut self, socket: &mut WebSocket) -> Result<(), End> {
        match self.protocol {
            WebSocketProtocols::GraphQLWS => {
                self.send(socket, Message::text(r#"{"type":"ping"}"#)).await
            }
            WebSocketProtocols::SubscriptionsTransportWS => {
                self.send(socket, Message::text(r#"{"type":"ka"}"#)).await?;
                self.send(socket, Message::Ping(Default::default())).await
            }
        }
    }

    /// The token given at `connection_init`, verified again: a `logout` anywhere (a revoked
    /// session in the shared revocation list) ends the socket.
    async fn check_session(&mut self) -> Result<(), End> {
        let Some(session) = &self.session else {
            return Ok(());
        };
        match self
            .state
            .verifier
            .viewer_from_header(Some(&session.authorization))
            .await
        {
            Viewer::User(_) => Ok(()),
            Viewer::Rejected(why) => Err(refused(&why)),
            Viewer::Anonymous => Err(forbidden("sign in again")),
        }
    }

    /// Keeps track of the ack and of subscriptions async-graphql has completed.
    fn on_server_message(&mut self, text: &str) {
        // Results are most of the traffic and change nothing here; async-graphql writes the
        // type first. Anything else is small.
        if text.starts_with(r#"{"type":"next""#) || text.starts_with(r#"{"type":"data""#) {
            return;
        }
        let Ok(message) = serde_json::from_str::<Envelope>(text) else {
            return;
        };
        match (message.kind.as_str(), message.id) {
            ("connection_ack", _) => self.acked = true,
            ("complete", Some(id)) => {
                if let Entry::Occupied(mut op) = self.operations.entry(id) {
                    let op_ref = op.get_mut();
                    op_ref.running = op_ref.running.saturating_sub(1);
                    self.running.dec();
                    if op_ref.running == 0 {
                        op.remove();
                    }
                }
            }
            _ => {}
        }
    }

    /// Judges one client message: hands it to async-graphql, answers it here (the reply is
    /// returned), or ends the socket.
    async fn on_client_message(&mut self, bytes: &[u8]) -> Result<Option<String>, End> {
        let message =
            ClientMessage::from_bytes(bytes).map_err(|e| End::Close(4400, bad_request(&e)))?;
        let message = match message {
            ClientMessage::ConnectionInit { payload } => {
                if self.init_received {
                    return Err(End::Close(
                        4429,
                        "Too many initialisation requests".to_owned(),
                    ));
                }
                self.init_received = true;
                self.sign_in(payload).await?;
                // The payload (the token) stays here; async-graphql only needs the viewer.
                ClientMessage::ConnectionInit { payload: None }
            }
            ClientMessage::Start { id, payload } => {
                if !self.acked {
                    return Err(End::Close(4401, "Unauthorized".to_owned()));
                }
                let replaces = match self.operations.get(&id) {
                    Some(op) if op.active => match self.protocol {
                        WebSocketProtocols::GraphQLWS => {
                            return Err(End::Close(
                                4409,
                                format!("Subscriber for {id} already exists"),
                            ));
                        }
                        // subscriptions-transport-ws replaces the running operation; keep
                        // what legacy clients have always had.
                        WebSocketProtocols::SubscriptionsTransportWS => true,
                    },
                    _ => false,
                };
                if !replaces {
                    if self.running.get() >= self.state.limits.max_subscriptions {
                        return Ok(Some(self.rate_limited(&id)));
                    }
                    let op = self.operations.entry(id.clone()).or_default();
                    op.active = true;
                    op.running += 1;
                    self.running.inc();
                }
                ClientMessage::Start { id, payload }
            }
            ClientMessage::Stop { id } => {
                if let Some(op) = self.operations.get_mut(&id) {
                    op.active = false;
                }
                ClientMessage::Stop { id }
            }
            ClientMessage::Pong { .. } => return Ok(None),
            // `ping` (async-graphql answers with `pong`), `connection_terminate`.
            other => other,
        };
        self.input
            .try_send(Box::new(message))
            .map_err(|_| End::Close(4400, "Bad request: too many messages at once".to_owned()))?;
        Ok(None)
    }

    /// Verifies the token of `connection_init` (or of the upgrade request), counts the
    /// connection against the user's cap and arms the expiry and the session checks.
    async fn sign_in(&mut self, payload: Option<Value>) -> Result<(), End> {
        let given = payload
            .as_ref()
            .and_then(|p| p.get("authorization").or_else(|| p.get("Authorization")))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let Some(authorization) = given.or_else(|| self.header_token.take()) else {
            return Err(forbidden(
                r#"sign in: send { "authorization": "Bearer <accessToken>" } in connection_init"#,
            ));
        };
        let claims = match self
            .state
            .verifier
            .viewer_from_header(Some(&authorization))
            .await
        {
            Viewer::User(claims) => claims,
            Viewer::Rejected(why) => return Err(refused(&why)),
            Viewer::Anonymous => return Err(forbidden("sign in")),
        };
        // The verifier allows a few seconds of clock skew past `exp`; a socket has no use for
        // a token that has already expired.
        let left = until_expiry(&claims);
        if left.is_zero() {
            return Err(forbidden("token expired; refresh it and connect again"));
        }
        let max = self.state.limits.max_connections_per_user;
        let slot = self
            .state
            .connections
            .try_acquire(claims.sub, max)
            .ok_or_else(|| {
                forbidden(format!(
                    "too many open connections for this user (at most {max} per server)"
                ))
            })?;
        if let Some(viewer) = self.viewer.take() {
            let _ = viewer.send(Viewer::User(claims.clone()));
        }
        let now = Instant::now();
        self.expiry.as_mut().reset(now + left);
        self.checks.reset();
        tracing::debug!(user.id = %claims.sub, "subscription socket signed in");
        self.session = Some(Session {
            claims,
            authorization,
            _slot: slot,
        });
        Ok(())
    }

    /// The `error` message for a `subscribe` over the cap (the operation does not start; the
    /// socket stays open).
    fn rate_limited(&self, id: &str) -> String {
        tracing::info!(
            user.id = self
                .session
                .as_ref()
                .map(|s| tracing::field::display(s.claims.sub)),
            max = self.state.limits.max_subscriptions,
            "subscription refused: too many on one socket"
        );
        let error = json!({
            "message": format!(
                "at most {} subscriptions may be active on one connection; complete one first",
                self.state.limits.max_subscriptions
            ),
            "extensions": { "code": ErrorCode::RateLimited.as_str() },
        });
        let payload = match self.protocol {
            WebSocketProtocols::GraphQLWS => json!([error]),
            // subscriptions-transport-ws sends one error object.
            WebSocketProtocols::SubscriptionsTransportWS => error,
        };
        json!({ "type": "error", "id": id, "payload": payload }).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_holds_at_most_max_connections_and_gets_them_back_when_they_end() {
        let connections = Arc::new(Connections::default());
        let (ann, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let first = connections.try_acquire(ann, 2).unwrap();
        let second = connections.try_acquire(ann, 2).unwrap();
        assert!(connections.try_acquire(ann, 2).is_none(), "over the cap");
        assert!(
            connections.try_acquire(bob, 2).is_some(),
            "others unaffected"
        );
        drop(first);
        assert_eq!(connections.open(ann), 1);
        let third = connections.try_acquire(ann, 2).unwrap();
        drop((second, third));
        assert_eq!(connections.open(ann), 0);
        assert!(
            connections.0.lock().unwrap().is_empty(),
            "nothing left behind"
        );
    }

    #[test]
    fn close_reasons_fit_a_close_frame() {
        assert_eq!(close_reason("short".into()), "short");
        let long = "é".repeat(100);
        let cut = close_reason(long);
        assert!(cut.len() <= MAX_REASON && cut.chars().all(|c| c == 'é'));
        let init = match forbidden(
            r#"sign in: send { "authorization": "Bearer <accessToken>" } in connection_init"#,
        ) {
            End::Close(_, reason) => reason,
            End::Gone(_) => unreachable!(),
        };
        assert!(init.len() <= MAX_REASON, "{init}");
    }
}
