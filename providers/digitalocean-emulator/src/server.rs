//! The running emulator: an HTTP/1 server on loopback that hands every request to the
//! account [`State`] under one lock, and the [`Emulator`] handle tests hold to steer it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value as Json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{EmulatorConfig, Faults};
use crate::state::{Exchange, Reply, State};

/// What the connection task shares with the handle.
struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in one handler must not take the whole emulator down with it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A running emulator. Dropping it stops the server.
pub struct Emulator {
    address: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Returned instead of an answer to make hyper close the connection unanswered.
#[derive(Debug)]
struct DroppedConnection;

impl std::fmt::Display for DroppedConnection {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("connection dropped on purpose by fault injection")
    }
}

impl std::error::Error for DroppedConnection {}

impl Emulator {
    /// Binds and starts serving in the background of the current tokio runtime.
    pub async fn start(config: EmulatorConfig) -> std::io::Result<Emulator> {
        if !config.listen.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "the emulator listens on loopback only; {} is not a loopback address",
                    config.listen
                ),
            ));
        }
        let listener = TcpListener::bind(config.listen).await?;
        let address = listener.local_addr()?;
        let base_url = format!("http://{address}");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(config, base_url)),
        });
        let (stop, mut stopped) = watch::channel(false);
        let serving = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let connection_shared = serving.clone();
                        let mut connection_stopped = stopped.clone();
                        tokio::spawn(async move {
                            let service = service_fn(move |request| {
                                let shared = connection_shared.clone();
                                async move { answer(shared, request).await }
                            });
                            let connection = http1::Builder::new()
                                .keep_alive(true)
                                .serve_connection(TokioIo::new(stream), service);
                            tokio::select! {
                                _ = connection => {}
                                _ = connection_stopped.changed() => {}
                            }
                        });
                    }
                    _ = stopped.changed() => break,
                }
            }
        });
        Ok(Emulator {
            address,
            shared,
            stop,
            task: Some(task),
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:<port>`: what `DIGITALOCEAN_API_URL` should be set to.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn set_faults(&self, faults: Faults) {
        self.shared.lock().faults = faults;
    }

    pub fn faults(&self) -> Faults {
        self.shared.lock().faults.clone()
    }

    /// Everything the emulator holds, as `GET /_emulator/state` shows it.
    pub fn state(&self) -> Json {
        self.shared.lock().snapshot()
    }

    /// Every API request and its answer since start (admin calls excluded).
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.shared.lock().exchanges.clone()
    }

    pub fn clear_exchanges(&self) {
        self.shared.lock().exchanges.clear();
    }

    /// Droplets that exist now, in id order (rendered as the API would).
    pub fn droplets(&self) -> Vec<Json> {
        let mut state = self.shared.lock();
        state.advance();
        state.rendered_droplets()
    }

    /// Changes a droplet's size behind stackctl's back. False if there is no such droplet.
    pub fn resize_out_of_band(&self, droplet_id: i64, size: &str) -> bool {
        self.shared
            .lock()
            .resize_out_of_band(droplet_id, size)
            .is_ok()
    }

    pub fn power_off_out_of_band(&self, droplet_id: i64) -> bool {
        self.shared.lock().power_off_out_of_band(droplet_id)
    }

    pub fn retag_out_of_band(&self, droplet_id: i64, tags: Vec<String>) -> bool {
        self.shared.lock().retag_out_of_band(droplet_id, tags)
    }

    /// Stops serving and waits for the accept loop to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn answer(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, DroppedConnection> {
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let authorization = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Err(DroppedConnection),
    };
    let reply = {
        let mut state = shared.lock();
        state.handle(&method, &path, &query, authorization.as_deref(), &body)
    };
    match reply {
        Reply::Drop => Err(DroppedConnection),
        Reply::Answer {
            status,
            headers,
            body,
            delay,
        } => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let mut response = Response::builder()
                .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
            for (name, value) in headers {
                response = response.header(name, value);
            }
            let bytes = match body {
                Some(json) => Bytes::from(json.to_string()),
                None => Bytes::new(),
            };
            response
                .body(Full::new(bytes))
                .or_else(|_| Ok::<_, Infallible>(Response::new(Full::new(Bytes::new()))))
                .map_err(|never| match never {})
        }
    }
}
