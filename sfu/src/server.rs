//! The SFU's IO shell: one tokio task owns the UDP socket and the
//! [`Sfu`] core, and takes joins from the HTTP side through a channel.
// The SFU's IO shell: it stamps datagrams and timers with the wall clock for the sans-IO core.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::room::{JoinError, Sfu, SfuConfig, SfuEvent, SfuStats};
use parley_wire::sfu::Participant;

/// Largest datagram read (above any path MTU).
const MAX_DATAGRAM: usize = 2048;

enum Command {
    Join {
        room: String,
        token: String,
        offer: String,
        reply: oneshot::Sender<Result<String, JoinError>>,
    },
    Stats(oneshot::Sender<SfuStats>),
    Participants {
        room: String,
        reply: oneshot::Sender<Vec<Participant>>,
    },
}

/// The SFU task stopped (its socket failed); joins cannot be served.
#[derive(Debug, thiserror::Error)]
#[error("the SFU is not running")]
pub struct SfuStopped;

/// A running SFU: cheap to clone, one per HTTP handler.
#[derive(Debug, Clone)]
pub struct SfuHandle {
    commands: mpsc::Sender<Command>,
    /// Where participants send media.
    pub public_addr: SocketAddr,
}

impl SfuHandle {
    /// Admits the holder of `token` to `room`; returns the SDP answer.
    pub async fn join(
        &self,
        room: &str,
        token: &str,
        offer: &str,
    ) -> Result<Result<String, JoinError>, SfuStopped> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Join {
                room: room.to_string(),
                token: token.to_string(),
                offer: offer.to_string(),
                reply,
            })
            .await
            .map_err(|_| SfuStopped)?;
        answer.await.map_err(|_| SfuStopped)
    }

    /// The core's counters.
    pub async fn stats(&self) -> Result<SfuStats, SfuStopped> {
        let (reply, stats) = oneshot::channel();
        self.commands
            .send(Command::Stats(reply))
            .await
            .map_err(|_| SfuStopped)?;
        stats.await.map_err(|_| SfuStopped)
    }

    /// Who is in `room` now.
    pub async fn participants(&self, room: &str) -> Result<Vec<Participant>, SfuStopped> {
        let (reply, list) = oneshot::channel();
        self.commands
            .send(Command::Participants {
                room: room.to_string(),
                reply,
            })
            .await
            .map_err(|_| SfuStopped)?;
        list.await.map_err(|_| SfuStopped)
    }
}

/// Binds the SFU's UDP socket at `bind` and works out the address to
/// offer participants: `public` when given, else the bound address (which
/// must then not be unspecified).
pub async fn bind(
    bind: SocketAddr,
    public: Option<SocketAddr>,
) -> std::io::Result<(UdpSocket, SocketAddr)> {
    let socket = UdpSocket::bind(bind).await?;
    let local = socket.local_addr()?;
    let public = match public {
        Some(public) => public,
        None if local.ip().is_unspecified() => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("SFU bound to {local}: give the address participants reach it at"),
            ));
        }
        None => local,
    };
    Ok((socket, public))
}

/// Starts the SFU task on `socket`.
pub fn start(socket: UdpSocket, config: SfuConfig) -> SfuHandle {
    let (commands, rx) = mpsc::channel(64);
    let public_addr = config.public_addr;
    tokio::spawn(serve(socket, Sfu::new(config), rx));
    SfuHandle {
        commands,
        public_addr,
    }
}

async fn serve(socket: UdpSocket, mut sfu: Sfu, mut commands: mpsc::Receiver<Command>) {
    let local = match socket.local_addr() {
        Ok(local) => local,
        Err(e) => {
            tracing::error!(error = %e, "SFU socket has no address");
            return;
        }
    };
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let deadline = sfu.poll_timeout();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, source)) => {
                    let now = Instant::now(); // clock-ok: the shell stamps inputs
                    sfu.handle_receive(now, source, local, &buf[..n]);
                }
                // ICMP port unreachable from a participant that went away
                // surfaces here on Linux: not the socket's failure.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Err(e) => {
                    tracing::error!(error = %e, "SFU socket failed");
                    return;
                }
            },
            command = commands.recv() => match command {
                Some(Command::Join { room, token, offer, reply }) => {
                    let now = Instant::now(); // clock-ok: the shell stamps inputs
                    let answer = sfu.join(now, parley_wire::clock::now_secs(), &room, &token, &offer);
                    let _ = reply.send(answer);
                }
                Some(Command::Stats(reply)) => {
                    let _ = reply.send(sfu.stats());
                }
                Some(Command::Participants { room, reply }) => {
                    let _ = reply.send(sfu.participants(&room));
                }
                // Every handle dropped: the server is shutting down.
                None => return,
            },
            () = sleep => sfu.handle_timeout(Instant::now()), // clock-ok: shell timer
        }
        while let Some(transmit) = sfu.poll_transmit() {
            if let Err(e) = socket
                .send_to(&transmit.contents, transmit.destination)
                .await
            {
                tracing::debug!(error = %e, to = %transmit.destination, "SFU send failed");
            }
        }
        while let Some(event) = sfu.poll_event() {
            match event {
                SfuEvent::Joined { room, participant } => {
                    tracing::debug!(room, id = participant.id, "participant joined");
                }
                SfuEvent::Left {
                    room,
                    participant,
                    reason,
                } => {
                    tracing::debug!(room, id = participant.id, %reason, "participant left");
                }
            }
        }
    }
}
