//! A TCP forwarder from a loopback port to a node's sshd, standing in for a
//! cellular link (or `tailscale nc`) between an operator and a node: it
//! counts the bytes each way and, when a test says so, cuts every
//! connection, cuts once after some bytes from the client, or refuses new
//! connections for a while. Threads and std only; everything it started is
//! stopped and joined on Drop.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct FlakyProxy {
    port: u16,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    up: AtomicU64,
    down: AtomicU64,
    connections: AtomicUsize,
    refused: AtomicUsize,
    cuts: AtomicUsize,
    next_id: AtomicU64,
    /// Open connections: (client side, server side), to cut them.
    live: Mutex<HashMap<u64, (TcpStream, TcpStream)>>,
    pumps: Mutex<Vec<JoinHandle<()>>>,
    /// Client→server bytes still to forward before the armed cut.
    cut_after: Mutex<Option<u64>>,
    down_until: Mutex<Option<Instant>>,
}

impl FlakyProxy {
    /// Forwards 127.0.0.1:<port()> to 127.0.0.1:`target_port`.
    pub fn to(target_port: u16) -> FlakyProxy {
        let target: SocketAddr = ([127, 0, 0, 1], target_port).into();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        let acceptor = {
            let shared = shared.clone();
            std::thread::spawn(move || accept_loop(listener, target, shared))
        };
        FlakyProxy {
            port,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections accepted and forwarded (not those refused while down).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Connections closed at once because the link was down.
    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Bytes forwarded client→server, over all connections.
    pub fn bytes_up(&self) -> u64 {
        self.shared.up.load(Ordering::SeqCst)
    }

    /// Bytes forwarded server→client, over all connections.
    pub fn bytes_down(&self) -> u64 {
        self.shared.down.load(Ordering::SeqCst)
    }

    /// How many times connections were cut (by `cut` or an armed `cut_after`).
    pub fn cuts(&self) -> usize {
        self.shared.cuts.load(Ordering::SeqCst)
    }

    /// Cuts every open connection now (both directions, both ends).
    pub fn cut(&self) {
        cut_all(&self.shared);
    }

    /// Once: forwards `n` more bytes client→server (over any connections),
    /// then cuts every open connection. Later connections are left alone.
    pub fn cut_after(&self, n: u64) {
        *self.shared.cut_after.lock().unwrap() = Some(n);
    }

    /// Closes every new connection at once for `duration` (open ones carry on).
    pub fn down_for(&self, duration: Duration) {
        *self.shared.down_until.lock().unwrap() = Some(Instant::now() + duration);
    }
}

impl Drop for FlakyProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        cut_all(&self.shared);
        let pumps = std::mem::take(&mut *self.shared.pumps.lock().unwrap());
        for pump in pumps {
            let _ = pump.join();
        }
    }
}

fn accept_loop(listener: TcpListener, target: SocketAddr, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            Err(_) => continue,
        };
        let down = shared
            .down_until
            .lock()
            .unwrap()
            .is_some_and(|until| Instant::now() < until);
        if down {
            shared.refused.fetch_add(1, Ordering::SeqCst);
            drop(client);
            continue;
        }
        let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(5)) else {
            drop(client);
            continue;
        };
        client.set_nonblocking(false).unwrap();
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
        shared.live.lock().unwrap().insert(
            id,
            (client.try_clone().unwrap(), server.try_clone().unwrap()),
        );
        let finished = Arc::new(AtomicUsize::new(0));
        let up = {
            let (from, to) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (shared, finished) = (shared.clone(), finished.clone());
            std::thread::spawn(move || pump(from, to, true, id, &shared, &finished))
        };
        let down = {
            let (shared, finished) = (shared.clone(), finished.clone());
            std::thread::spawn(move || pump(server, client, false, id, &shared, &finished))
        };
        shared.pumps.lock().unwrap().extend([up, down]);
    }
}

/// Copies `from` to `to` until EOF, an error or a cut. `up` is client→server.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    up: bool,
    id: u64,
    shared: &Shared,
    finished: &AtomicUsize,
) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                break;
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => {
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
                break;
            }
        };
        let (send, cut) = if up {
            let mut armed = shared.cut_after.lock().unwrap();
            match *armed {
                Some(left) if (n as u64) >= left => {
                    *armed = None;
                    (left as usize, true)
                }
                Some(left) => {
                    *armed = Some(left - n as u64);
                    (n, false)
                }
                None => (n, false),
            }
        } else {
            (n, false)
        };
        let ok = to.write_all(&buf[..send]).is_ok();
        let counter = if up { &shared.up } else { &shared.down };
        if ok {
            counter.fetch_add(send as u64, Ordering::SeqCst);
        }
        if cut {
            cut_all(shared);
            break;
        }
        if !ok {
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
            break;
        }
    }
    // The second direction to finish closes the connection's last handles.
    if finished.fetch_add(1, Ordering::SeqCst) == 1 {
        shared.live.lock().unwrap().remove(&id);
    }
}

fn cut_all(shared: &Shared) {
    let live = std::mem::take(&mut *shared.live.lock().unwrap());
    if !live.is_empty() {
        shared.cuts.fetch_add(1, Ordering::SeqCst);
    }
    for (client, server) in live.values() {
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
    }
}
