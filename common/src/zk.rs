//! ZooKeeper session helper.
//!
//! [`connect`] opens a session with a deadline and the replicator's identity
//! (digest auth when configured). Inside a session the client reconnects on
//! its own after a network blip (state `Disconnected` then `SyncConnected`);
//! an `Expired` session is terminal, and the caller opens a new one with
//! [`connect`] again (its ephemeral nodes are gone by then). [`StateEvents`]
//! turns the client's state watcher into events a caller can `select!` on.
//!
//! Each session's client task runs on a runtime of its own, shut down with
//! the session's last handle ([`crate::zk_watchdog`], a workaround for a
//! busy loop of zookeeper-client 0.11.2).
//!
//! Znodes are created with `creator_all` ACLs when the session is
//! authenticated (only the replicator identity can read or write them) and
//! open ACLs otherwise (development mode).

use crate::paths::Layout;
use crate::zk_watchdog::SessionRuntime;
use std::sync::Arc;
use std::time::Duration;
use zookeeper_client::{Acls, Client, CreateMode, CreateOptions, SessionState, StateWatcher};

pub use zookeeper_client::Error as ZkClientError;

/// How to reach ZooKeeper.
#[derive(Clone)]
pub struct ZkOptions {
    /// `host:port[,host:port]`.
    pub servers: String,
    pub layout: Layout,
    pub session_timeout: Duration,
    /// `user:password` for digest authentication, or `None` (open ACLs).
    pub auth: Option<String>,
}

impl std::fmt::Debug for ZkOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZkOptions")
            .field("servers", &self.servers)
            .field("root", &self.layout.root())
            .field("session_timeout", &self.session_timeout)
            .field("auth", &self.auth.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Errors of the session helper.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    #[error("cannot reach ZooKeeper at {servers} within {waited_ms} ms")]
    Unreachable { servers: String, waited_ms: u128 },
    #[error("ZooKeeper at {servers}: {source}")]
    Connect {
        servers: String,
        #[source]
        source: ZkClientError,
    },
    #[error("ZooKeeper {op} {path}: {source}")]
    Op {
        op: &'static str,
        path: String,
        #[source]
        source: ZkClientError,
    },
    #[error("ZooKeeper auth must be USER:PASSWORD")]
    BadAuth,
    #[error("cannot start the ZooKeeper session's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Path(#[from] crate::paths::PathError),
}

impl ZkError {
    pub fn op(op: &'static str, path: &str, source: ZkClientError) -> Self {
        ZkError::Op {
            op,
            path: path.to_string(),
            source,
        }
    }
    /// The underlying client error, if any.
    pub fn client_error(&self) -> Option<&ZkClientError> {
        match self {
            ZkError::Connect { source, .. } | ZkError::Op { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// An open session plus the layout and ACLs to use with it.
#[derive(Clone, Debug)]
pub struct Zk {
    client: Client,
    layout: Layout,
    authenticated: bool,
    /// Runs the client's session task; shut down with the last clone.
    _runtime: Arc<SessionRuntime>,
}

/// Opens a session, waiting at most `session_timeout` (at least 2 s) for it.
pub async fn connect(opts: &ZkOptions) -> Result<Zk, ZkError> {
    let mut connector = Client::connector();
    connector = connector
        .with_session_timeout(opts.session_timeout)
        .with_connection_timeout(Duration::from_millis(1000));
    if let Some(auth) = &opts.auth {
        if !auth.contains(':') {
            return Err(ZkError::BadAuth);
        }
        connector = connector.with_auth("digest", auth.as_bytes());
    }
    let wait = opts.session_timeout.max(Duration::from_secs(2));
    let mut runtime = SessionRuntime::new().map_err(ZkError::Runtime)?;
    let servers = opts.servers.clone();
    // the client spawns its session task where it connects: on `runtime`
    let connecting = runtime.spawn(async move { connector.connect(&servers).await });
    let client = match tokio::time::timeout(wait, connecting).await {
        Err(_) | Ok(Err(_)) => {
            return Err(ZkError::Unreachable {
                servers: opts.servers.clone(),
                waited_ms: wait.as_millis(),
            })
        }
        Ok(Ok(Err(source))) => {
            return Err(ZkError::Connect {
                servers: opts.servers.clone(),
                source,
            })
        }
        Ok(Ok(Ok(client))) => client,
    };
    let mut states = client.state_watcher();
    runtime.until_closed(Box::pin(async move {
        while !is_terminal(states.changed().await) {}
    }));
    Ok(Zk {
        client,
        layout: opts.layout.clone(),
        authenticated: opts.auth.is_some(),
        _runtime: Arc::new(runtime),
    })
}

impl Zk {
    pub fn client(&self) -> &Client {
        &self.client
    }
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
    /// The session timeout the server granted.
    pub fn session_timeout(&self) -> Duration {
        self.client.session_timeout()
    }
    pub fn state(&self) -> SessionState {
        self.client.state()
    }
    pub fn session_events(&self) -> StateEvents {
        StateEvents(self.client.state_watcher())
    }

    /// ACLs for nodes this session creates.
    pub fn acls(&self) -> Acls<'static> {
        if self.authenticated {
            Acls::creator_all()
        } else {
            Acls::anyone_all()
        }
    }

    pub fn options(&self, mode: CreateMode) -> CreateOptions<'static> {
        mode.with_acls(self.acls())
    }

    /// Creates `path` and its missing ancestors as empty persistent nodes.
    pub async fn ensure_path(&self, path: &str) -> Result<(), ZkError> {
        let opts = self.options(CreateMode::Persistent);
        let mut at = String::new();
        for seg in path.trim_start_matches('/').split('/') {
            at.push('/');
            at.push_str(seg);
            if self
                .client
                .check_stat(&at)
                .await
                .map_err(|e| ZkError::op("stat", &at, e))?
                .is_some()
            {
                continue;
            }
            match self.client.create(&at, b"", &opts).await {
                Ok(_) | Err(ZkClientError::NodeExists) => {}
                Err(e) => return Err(ZkError::op("create", &at, e)),
            }
        }
        Ok(())
    }

    /// Creates a persistent node with `data` unless it exists; true when created.
    pub async fn create_if_absent(&self, path: &str, data: &[u8]) -> Result<bool, ZkError> {
        match self
            .client
            .create(path, data, &self.options(CreateMode::Persistent))
            .await
        {
            Ok(_) => Ok(true),
            Err(ZkClientError::NodeExists) => Ok(false),
            Err(e) => Err(ZkError::op("create", path, e)),
        }
    }

    /// Data and version of `path`, or `None` when it does not exist.
    pub async fn get(&self, path: &str) -> Result<Option<(Vec<u8>, i32)>, ZkError> {
        match self.client.get_data(path).await {
            Ok((data, stat)) => Ok(Some((data, stat.version))),
            Err(ZkClientError::NoNode) => Ok(None),
            Err(e) => Err(ZkError::op("get", path, e)),
        }
    }

    /// Children of `path`, or an empty list when it does not exist.
    pub async fn children(&self, path: &str) -> Result<Vec<String>, ZkError> {
        match self.client.list_children(path).await {
            Ok(c) => Ok(c),
            Err(ZkClientError::NoNode) => Ok(Vec::new()),
            Err(e) => Err(ZkError::op("list", path, e)),
        }
    }

    /// Deletes `path` and everything below it; a missing node is fine.
    pub async fn delete_recursive(&self, path: &str) -> Result<(), ZkError> {
        let mut stack = vec![(path.to_string(), false)];
        while let Some((p, expanded)) = stack.pop() {
            if !expanded {
                stack.push((p.clone(), true));
                for c in self.children(&p).await? {
                    stack.push((format!("{p}/{c}"), false));
                }
                continue;
            }
            match self.client.delete(&p, None).await {
                Ok(()) | Err(ZkClientError::NoNode) => {}
                Err(ZkClientError::NotEmpty) => {
                    // a child appeared meanwhile (an instance registering): go again
                    stack.push((p, false));
                }
                Err(e) => return Err(ZkError::op("delete", &p, e)),
            }
        }
        Ok(())
    }

    /// Closes the session now (its ephemeral nodes vanish at once).
    pub async fn close(self) {
        drop(self.client);
    }
}

/// Session state changes as a stream of events.
pub struct StateEvents(StateWatcher);

impl StateEvents {
    /// The current state.
    pub fn current(&self) -> SessionState {
        self.0.peek_state()
    }
    /// Waits for the next state change.
    pub async fn next(&mut self) -> SessionState {
        self.0.changed().await
    }
}

/// True when the state means the session is over for good.
pub fn is_terminal(state: SessionState) -> bool {
    matches!(
        state,
        SessionState::Expired | SessionState::Closed | SessionState::AuthFailed
    )
}
