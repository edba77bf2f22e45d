//! A TCP proxy between a store and its database server that a test can cut (a network
//! partition: connections stay open but nothing gets through, and new ones are accepted
//! and then left hanging) and restore (the stranded connections are closed, new ones
//! reach the server again).

use std::{
    net::{Ipv4Addr, SocketAddr},
    sync::{Arc, Mutex},
};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
    task::AbortHandle,
};

/// Ports the proxies may listen on (this test suite's range).
const PORTS: std::ops::RangeInclusive<u16> = 18330..=18349;

/// `(up, epoch)`: whether traffic flows, and which restore we are in.
type Mode = (bool, u64);

/// A running proxy; its tasks end when it is dropped.
pub struct Proxy {
    /// The port the store should connect to.
    pub port: u16,
    mode: watch::Sender<Mode>,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    /// Listens on a free port of [`PORTS`] and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let mut bound = None;
        for port in PORTS {
            if let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
                bound = Some((listener, port));
                break;
            }
        }
        let (listener, port) = bound.expect("a free port for the proxy");
        let (mode, _) = watch::channel((true, 0));
        let tasks: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let accept = {
            let (mode, tasks) = (mode.clone(), tasks.clone());
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let task = tokio::spawn(relay(client, upstream, mode.subscribe()));
                    tasks.lock().expect("lock").push(task.abort_handle());
                }
            })
        };
        tasks.lock().expect("lock").push(accept.abort_handle());
        Proxy { port, mode, tasks }
    }

    /// Cuts the link: nothing gets through on open or new connections.
    pub fn cut(&self) {
        self.mode.send_modify(|m| m.0 = false);
    }

    /// Restores the link: connections opened before or during the cut are closed, new
    /// ones reach the server.
    pub fn restore(&self) {
        self.mode.send_modify(|m| *m = (true, m.1 + 1));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        for task in self.tasks.lock().expect("lock").drain(..) {
            task.abort();
        }
    }
}

/// One client connection: forwarded while the link is up in the epoch it was accepted
/// in; held open without a byte through while cut; closed at the next restore.
async fn relay(mut client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    let epoch = mode.borrow().1;
    let up_now = mode.borrow().0;
    if up_now {
        let Ok(mut server) = TcpStream::connect(upstream).await else {
            return;
        };
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
            _ = mode.wait_for(|m| !m.0 || m.1 != epoch) => {}
        }
        // Cut: keep both sockets open and silent until the restore closes them.
        let _ = mode.wait_for(|m| m.1 != epoch).await;
        drop(server);
    } else {
        let _ = mode.wait_for(|m| m.1 != epoch).await;
    }
    drop(client);
}
