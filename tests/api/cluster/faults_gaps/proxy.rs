//! A TCP proxy in front of Redis for one instance: it can refuse that instance's new
//! connections (its subscription stays lost while the others come back), and it can stop
//! forwarding on its subscriptions while keeping them open: a half-open connection, which
//! no close and no error announces.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// A runtime of its own: an instance's blocking Redis calls (the moderation store's)
    /// must not hold up the proxy they go through.
    runtime: Option<tokio::runtime::Runtime>,
}

#[derive(Default)]
struct Shared {
    /// New connections are closed at once.
    refusing: AtomicBool,
    /// Connections that subscribed, to go half-open on `silence_subscriptions`.
    subscribed: Mutex<Vec<Arc<AtomicBool>>>,
}

impl Proxy {
    pub async fn start(upstream: u16) -> Proxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let listener = {
            let _entered = runtime.enter();
            TcpListener::from_std(std_listener).unwrap()
        };
        let shared = Arc::new(Shared::default());
        runtime.spawn({
            let shared = shared.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    if shared.refusing.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                        continue;
                    };
                    shared.connect(client, server);
                }
            }
        });
        Proxy {
            addr,
            shared,
            runtime: Some(runtime),
        }
    }

    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Closes every new connection at once (`true`), or forwards them again.
    pub fn refuse(&self, refusing: bool) {
        self.shared.refusing.store(refusing, Ordering::SeqCst);
    }

    /// Stops forwarding either way on every connection that subscribed, and leaves them open.
    pub fn silence_subscriptions(&self) -> usize {
        let subscribed = self.shared.subscribed.lock().unwrap();
        for silent in subscribed.iter() {
            silent.store(true, Ordering::SeqCst);
        }
        subscribed.len()
    }
}

impl Shared {
    /// On the proxy's runtime.
    fn connect(self: &Arc<Self>, client: TcpStream, server: TcpStream) {
        let silent = Arc::new(AtomicBool::new(false));
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        tokio::spawn(pump(
            client_read,
            server_write,
            silent.clone(),
            Some(self.clone()),
        ));
        tokio::spawn(pump(server_read, client_write, silent, None));
    }
}

/// Copies `from` to `to` until either ends, or forever holds both once `silent`. `watch`:
/// marks the connection as a subscription when a SUBSCRIBE goes through it.
async fn pump(
    mut from: impl AsyncReadExt + Unpin,
    mut to: impl AsyncWriteExt + Unpin,
    silent: Arc<AtomicBool>,
    watch: Option<Arc<Shared>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut marked = false;
    loop {
        let Ok(n) = from.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        if let Some(shared) = &watch
            && !marked
            && contains(&buf[..n], b"SUBSCRIBE")
        {
            marked = true;
            shared.subscribed.lock().unwrap().push(silent.clone());
        }
        if silent.load(Ordering::SeqCst) {
            // Half-open: nothing passes, nothing closes.
            let _hold = (from, to);
            std::future::pending::<()>().await;
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
