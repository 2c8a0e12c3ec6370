//! Host-side TCP forwarders: the sandbox reaches host 127.0.0.1:PORT at HOST_IP:PORT.

use std::thread::JoinHandle;

use anyhow::{Context, Result};
use tokio::net::{TcpListener, TcpStream};

/// Running forwarders; they stop when this is dropped.
pub struct Forwarders {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Forwarders {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn start(host_ip: &str, ports: &[u16]) -> Result<Forwarders> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut listeners = Vec::new();
    for &port in ports {
        let addr = format!("{host_ip}:{port}");
        let std_listener =
            std::net::TcpListener::bind(&addr).with_context(|| format!("forwarding {addr}"))?;
        std_listener.set_nonblocking(true)?;
        listeners.push((std_listener, port));
    }
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        runtime.block_on(async move {
            for (listener, port) in listeners {
                let Ok(listener) = TcpListener::from_std(listener) else {
                    continue;
                };
                tokio::spawn(accept_loop(listener, port));
            }
            let _ = (&mut stopped).await;
        });
    });
    Ok(Forwarders {
        stop: Some(stop),
        thread: Some(thread),
    })
}

async fn accept_loop(listener: TcpListener, port: u16) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", port)).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}
