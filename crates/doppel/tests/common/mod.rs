//! Shared by the end-to-end tests: [`TestServer`] runs the real `doppel` binary on a temporary
//! data directory with OS-chosen ports (like influxdb3's TestServer), and small blocking
//! clients for HTTP, WebSocket, SSE and `mosquitto_pub` talk to it over loopback.
//!
//! Every wait here is bounded; a server that does not come up, stop or answer in time fails the
//! test with its log printed.

#![allow(dead_code, clippy::unwrap_used)]

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long the server may take to print its `listening` line.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a SIGTERM'd server may take to exit.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound of every HTTP request made by the helpers.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound of waits for live events and metric changes.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// `2026-01-31T12:00:00Z` in epoch milliseconds: a minute-aligned base for readings.
pub const T0_MS: i64 = 1_769_860_800_000;

/// Environment variables of the server that the tests set themselves or must not inherit.
const SERVER_ENV: [&str; 9] = [
    "DOPPEL_ADMIN_TOKEN",
    "DOPPEL_DATA_DIR",
    "DOPPEL_HTTP_ADDR",
    "DOPPEL_MQTT_ADDR",
    "DOPPEL_SHARDS",
    "DOPPEL_LOG_JSON",
    "DOPPEL_ANOMALY",
    "DOPPEL_STORE_CHECKPOINT_BYTES",
    "DOPPEL_STORE_CHUNK_POINTS",
];

/// Path of the binary under test.
pub fn doppel_bin() -> &'static str {
    env!("CARGO_BIN_EXE_doppel")
}

/// How a [`TestServer`] is started.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Sets `DOPPEL_ADMIN_TOKEN`; without it the token generated at first start is used.
    pub env_admin_token: Option<String>,
    /// More environment variables of the server (its flags' `DOPPEL_*` variables).
    pub env: Vec<(String, String)>,
    /// Runs the server under `ulimit -f` (this many of `sh`'s blocks) with SIGXFSZ ignored, so writing a file past the limit fails with EFBIG: a full disk that
    /// root cannot write through.
    pub file_size_limit_blocks: Option<u64>,
}

/// A running `doppel serve`.
pub struct TestServer {
    dir: tempfile::TempDir,
    options: Options,
    child: Option<Child>,
    /// Stdout lines of the current process read after its `listening` line.
    stdout_rest: Arc<Mutex<Vec<String>>>,
    /// Every stdout line of the current process up to `listening` (config, token banner).
    pub banner: Vec<String>,
    http: SocketAddr,
    mqtt: SocketAddr,
    /// A token with the admin role.
    pub admin_token: String,
    agent: ureq::Agent,
    starts: usize,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("dir", &self.dir.path())
            .field("http", &self.http)
            .field("mqtt", &self.mqtt)
            .field("pid", &self.child.as_ref().map(Child::id))
            .finish_non_exhaustive()
    }
}

impl TestServer {
    /// Starts a server on a fresh data directory; the admin token is the one it generates.
    pub fn start() -> TestServer {
        TestServer::start_with(Options::default())
    }

    pub fn start_with(options: Options) -> TestServer {
        let dir = tempfile::Builder::new()
            .prefix("doppel-e2e-")
            .tempdir()
            .unwrap();
        let mut server = TestServer {
            dir,
            options,
            child: None,
            stdout_rest: Arc::default(),
            banner: Vec::new(),
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            mqtt: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_token: String::new(),
            agent: agent(),
            starts: 0,
        };
        server.spawn();
        server
    }

    /// How the next (re)start runs the server.
    pub fn options_mut(&mut self) -> &mut Options {
        &mut self.options
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// `http://127.0.0.1:PORT`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http)
    }

    pub fn mqtt_port(&self) -> u16 {
        self.mqtt.port()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server not running").id()
    }

    /// Starts the binary and waits (bounded) for its `listening` line.
    fn spawn(&mut self) {
        if let Err(msg) = self.try_spawn() {
            self.fail(&msg);
        }
    }

    /// Like [`TestServer::spawn`], but a server that exits or does not listen in time is an
    /// `Err` with the reason (the log is in [`TestServer::log`]), not a panic.
    pub fn try_spawn(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "server already running");
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        writeln!(log, "===== start #{} =====", self.starts).unwrap();
        let mut cmd = match self.options.file_size_limit_blocks {
            Some(blocks) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!(
                        "trap '' XFSZ; ulimit -f {blocks} && exec \"$0\" \"$@\""
                    ))
                    .arg(doppel_bin());
                c
            }
            None => Command::new(doppel_bin()),
        };
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--http-addr", "127.0.0.1:0", "--mqtt-addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        for var in SERVER_ENV {
            cmd.env_remove(var);
        }
        // The log goes to a file that is printed on failure: no colour codes in it.
        cmd.env("NO_COLOR", "1");
        if let Some(t) = &self.options.env_admin_token {
            cmd.env("DOPPEL_ADMIN_TOKEN", t);
        }
        for (k, v) in &self.options.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawning doppel");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let rest = Arc::new(Mutex::new(Vec::new()));
        self.stdout_rest = rest.clone();
        // Reads stdout to its end so the pipe never fills; lines after `listening` are kept.
        std::thread::spawn(move || {
            let mut ready = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if ready {
                    rest.lock().unwrap().push(line);
                } else {
                    ready = line.starts_with("listening ");
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        });
        self.child = Some(child);

        let deadline = Instant::now() + START_TIMEOUT;
        let mut banner = Vec::new();
        let listening = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.starts_with("listening ") => break line,
                Ok(line) => banner.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(mut child) = self.child.take() {
                        let _ = child.kill();
                        let _ = child.wait();
                    }
                    return Err(format!(
                        "no `listening` line within {START_TIMEOUT:?}: {banner:?}"
                    ));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.as_mut().and_then(|c| c.wait().ok());
                    self.child = None;
                    return Err(format!(
                        "doppel exited ({status:?}) before listening: {banner:?}"
                    ));
                }
            }
        };
        let Some((http, mqtt)) = parse_listening(&listening) else {
            return Err(format!("bad listening line: {listening:?}"));
        };
        self.http = http;
        self.mqtt = mqtt;
        if let Some(t) = &self.options.env_admin_token {
            self.admin_token = t.clone();
        } else if let Some(t) = generated_token(&banner) {
            self.admin_token = t;
        } else if self.admin_token.is_empty() {
            return Err(format!("no generated admin token on stdout: {banner:?}"));
        }
        self.banner = banner;
        Ok(())
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit; returns the stdout printed after
    /// the `listening` line.
    pub fn stop(&mut self) -> Vec<String> {
        let mut child = self.child.take().expect("server not running");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = wait_bounded(&mut child, STOP_TIMEOUT);
        let out = std::mem::take(&mut *self.stdout_rest.lock().unwrap());
        match status {
            Some(s) if s.success() => {}
            Some(s) => self.fail(&format!(
                "doppel exited with {s} after SIGTERM; stdout {out:?}"
            )),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                self.fail(&format!(
                    "doppel did not exit within {STOP_TIMEOUT:?} of SIGTERM"
                ))
            }
        }
        // The reader thread may still be handing over the last line.
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut out = out;
        while !out.iter().any(|l| l == "doppel stopped") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            out.extend(std::mem::take(&mut *self.stdout_rest.lock().unwrap()));
        }
        out
    }

    /// SIGTERM, wait, and start again on the same data directory (new ports). When the server
    /// is not running (after [`TestServer::kill9`]) it is only started.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            let out = self.stop();
            assert!(
                out.iter().any(|l| l == "doppel stopped"),
                "no `doppel stopped` on stdout after SIGTERM: {out:?}"
            );
        }
        self.spawn();
    }

    /// SIGKILL at once (no shutdown code runs) and reap the process.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("server not running");
        // `Child::kill` is SIGKILL on unix.
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "killed server reported success: {status}"
        );
    }

    /// The server's stderr (its log) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Fails the test with the server's log.
    fn fail(&self, msg: &str) -> ! {
        panic!(
            "{msg}\n----- doppel log ({}) -----\n{}",
            self.log_path().display(),
            tail(&self.log(), 200)
        );
    }

    // ---- HTTP ----

    /// One request; 4xx and 5xx are answers, not errors. The body is parsed as JSON when it
    /// is JSON, returned as a JSON string otherwise, and `null` when empty.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> (u16, Value) {
        let (status, text) = self.request_text(method, path, headers, body);
        (status, to_json(&text))
    }

    /// Like [`TestServer::request`] with the raw body text.
    pub fn request_text(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> (u16, String) {
        http_text(&self.agent, &self.http_url(), method, path, headers, body)
            .unwrap_or_else(|e| self.fail(&format!("{method} {path}: {e}")))
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.json_call("GET", path, token, None)
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        self.json_call("POST", path, token, Some(body))
    }

    pub fn put(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        self.json_call("PUT", path, token, Some(body))
    }

    pub fn delete(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.json_call("DELETE", path, token, None)
    }

    /// POSTs a text body (line protocol, or deliberately broken JSON).
    pub fn post_text(&self, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "text/plain; charset=utf-8")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        self.request("POST", path, &headers, Some(body.as_bytes()))
    }

    fn json_call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
        if bytes.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        self.request(method, path, &headers, bytes.as_deref())
    }

    /// GET with the admin token that must answer 200.
    pub fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path, Some(&self.admin_token));
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// POST with the admin token that must answer 2xx.
    pub fn post_ok(&self, path: &str, body: &Value) -> Value {
        let (status, out) = self.post(path, Some(&self.admin_token), body);
        assert!(
            (200..300).contains(&status),
            "POST {path} {body}: {status} {out}"
        );
        out
    }

    /// `GET /metrics` (no token).
    pub fn metrics(&self) -> String {
        let (status, text) = self.request_text("GET", "/metrics", &[], None);
        assert_eq!(status, 200, "/metrics: {text}");
        text
    }

    /// Waits until `f(metrics text)` holds; fails after [`EVENT_TIMEOUT`].
    pub fn wait_for_metrics(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        loop {
            let text = self.metrics();
            if f(&text) {
                return text;
            }
            if Instant::now() > deadline {
                panic!("metrics never showed {what} within {EVENT_TIMEOUT:?}:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `doppel token create --role <role>` on this server's data directory.
    pub fn create_token(&self, role: &str) -> String {
        let out = run_bounded(
            Command::new(doppel_bin())
                .args([
                    "token",
                    "create",
                    "--role",
                    role,
                    "--name",
                    "e2e",
                    "--data-dir",
                ])
                .arg(self.data_dir()),
            Duration::from_secs(30),
        );
        assert!(out.status.success(), "token create --role {role}: {out:?}");
        let token = out.stdout.trim().to_string();
        assert!(
            token.starts_with("dpl_"),
            "token create printed {:?}",
            out.stdout
        );
        token
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "----- doppel log of the failed test ({}) -----\n{}",
                self.log_path().display(),
                tail(&self.log(), 200)
            );
        }
    }
}

/// A blocking HTTP client that treats every status as an answer, with a new connection per
/// request. An answer sent before the request body was read (a 401 or 403 decided from the
/// headers) makes the server close the connection afterwards, without `Connection: close`;
/// ureq would reuse such a pooled connection for the next request and fail on it.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(HTTP_TIMEOUT))
        .max_idle_connections(0)
        .max_idle_connections_per_host(0)
        .build()
        .new_agent()
}

/// Like [`agent`] but keeping connections alive, for load whose every request is read whole
/// by the server (valid readings with a valid token).
pub fn pooled_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(HTTP_TIMEOUT))
        .max_idle_connections_per_host(16)
        .build()
        .new_agent()
}

/// One request with `agent`; `Err` only for transport failures.
pub fn http_text(
    agent: &ureq::Agent,
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<(u16, String), ureq::Error> {
    let url = format!("{base}{path}");
    let mut resp = match (method, body) {
        ("GET", _) => with_headers(agent.get(&url), headers).call()?,
        ("DELETE", _) => with_headers(agent.delete(&url), headers).call()?,
        ("POST", b) => with_headers(agent.post(&url), headers).send(b.unwrap_or_default())?,
        ("PUT", b) => with_headers(agent.put(&url), headers).send(b.unwrap_or_default())?,
        (m, _) => panic!("method {m} not supported by the test client"),
    };
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(256 * 1024 * 1024)
        .read_to_string()?;
    Ok((status, text))
}

fn with_headers<B>(
    mut req: ureq::RequestBuilder<B>,
    headers: &[(&str, &str)],
) -> ureq::RequestBuilder<B> {
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req
}

fn to_json(text: &str) -> Value {
    if text.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// `listening http=127.0.0.1:PORT mqtt=127.0.0.1:PORT`.
fn parse_listening(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let mut http = None;
    let mut mqtt = None;
    for part in line.split_whitespace().skip(1) {
        if let Some(a) = part.strip_prefix("http=") {
            http = a.parse().ok();
        } else if let Some(a) = part.strip_prefix("mqtt=") {
            mqtt = a.parse().ok();
        }
    }
    Some((http?, mqtt?))
}

/// The generated admin token: a `dpl_<id>_<secret>` alone on an indented line.
fn generated_token(banner: &[String]) -> Option<String> {
    banner
        .iter()
        .filter(|l| l.starts_with(' '))
        .map(|l| l.trim())
        .find(|l| l.starts_with("dpl_") && l.matches('_').count() >= 2 && !l.contains(' '))
        .map(String::from)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Waits for `child` at most `timeout`; `None` when it is still running.
pub fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command to its end, killing it (and failing) after `timeout`.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let Some(status) = wait_bounded(&mut child, timeout) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{cmd:?} did not finish within {timeout:?}");
    };
    Output {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

// ---- MQTT (the real mosquitto_pub) ----

/// Whether `mosquitto_pub` can be run. When it cannot, the MQTT parts of the tests are
/// skipped with a message, unless `DOPPEL_E2E_REQUIRE_MQTT` is set (CI), where they fail.
pub fn mosquitto_pub_available() -> bool {
    let found = Command::new("mosquitto_pub")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("DOPPEL_E2E_REQUIRE_MQTT").is_none(),
            "DOPPEL_E2E_REQUIRE_MQTT is set but mosquitto_pub is not installed \
             (apt-get install mosquitto-clients)"
        );
        eprintln!(
            "SKIPPED: the MQTT part of this test needs mosquitto_pub (apt-get install \
             mosquitto-clients); set DOPPEL_E2E_REQUIRE_MQTT=1 to make its absence an error"
        );
    }
    found
}

/// `mosquitto_pub -h 127.0.0.1 -p <port> -u token -P <password> -q <qos> -t <topic> -m <msg>`
/// plus `extra` arguments, bounded to 20 s.
pub fn mosquitto_pub(
    port: u16,
    password: &str,
    qos: u8,
    topic: &str,
    message: &str,
    extra: &[&str],
) -> Output {
    run_bounded(
        Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-u",
                "token",
                "-P",
                password,
            ])
            .args(["-q", &qos.to_string(), "-t", topic, "-m", message])
            .args(extra),
        Duration::from_secs(20),
    )
}

// ---- live push clients ----

/// A WebSocket subscription to `/api/v1/stream`.
pub struct WsClient {
    ws: tungstenite::WebSocket<TcpStream>,
}

impl std::fmt::Debug for WsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsClient").finish_non_exhaustive()
    }
}

impl WsClient {
    /// Connects to `/api/v1/stream?<query>` with a bearer token. The server subscribes
    /// before it completes the handshake, so events published after this returns arrive.
    pub fn connect(addr: SocketAddr, token: &str, query: &str) -> WsClient {
        WsClient::open(addr, Some(token), query)
    }

    /// Like [`WsClient::connect`]; without `token` no `Authorization` header is sent (a
    /// browser puts it in the query as `access_token`).
    pub fn open(addr: SocketAddr, token: Option<&str>, query: &str) -> WsClient {
        use tungstenite::client::IntoClientRequest;
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut req = format!("ws://{addr}/api/v1/stream?{query}")
            .into_client_request()
            .unwrap();
        if let Some(token) = token {
            req.headers_mut()
                .insert("Authorization", format!("Bearer {token}").parse().unwrap());
        }
        let (ws, resp) = tungstenite::client::client(req, stream)
            .unwrap_or_else(|e| panic!("WebSocket handshake failed: {e}"));
        assert_eq!(resp.status().as_u16(), 101);
        ws.get_ref()
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        WsClient { ws }
    }

    /// The next text message as JSON, waiting at most `timeout`.
    pub fn next_json(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.ws.read() {
                Ok(tungstenite::Message::Text(t)) => {
                    return Some(serde_json::from_str(t.as_str()).unwrap())
                }
                Ok(tungstenite::Message::Close(_)) => return None,
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("WebSocket read failed: {e}"),
            }
        }
        None
    }
}

/// A Server-Sent Events subscription to `/api/v1/events`, over a plain HTTP/1.0 connection
/// (so the body is the bare event stream, without chunked framing).
#[derive(Debug)]
pub struct SseClient {
    stream: TcpStream,
    buf: Vec<u8>,
    headers_done: bool,
}

impl SseClient {
    pub fn connect(addr: SocketAddr, token: &str, query: &str) -> SseClient {
        SseClient::open(addr, Some(token), query)
    }

    /// Like [`SseClient::connect`]; without `token` no `Authorization` header is sent.
    pub fn open(addr: SocketAddr, token: Option<&str>, query: &str) -> SseClient {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "GET /api/v1/events?{query} HTTP/1.0\r\nHost: {addr}\r\n{auth}Accept: text/event-stream\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).unwrap();
        SseClient {
            stream,
            buf: Vec::new(),
            headers_done: false,
        }
    }

    fn fill(&mut self, deadline: Instant) -> bool {
        let mut chunk = [0u8; 4096];
        while Instant::now() < deadline {
            match self.stream.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return true;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("SSE read failed: {e}"),
            }
        }
        false
    }

    /// The next event as `(event name, data)`, waiting at most `timeout`. Checks the response
    /// head (200, `text/event-stream`) on the first call.
    pub fn next_event(&mut self, timeout: Duration) -> Option<(String, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.headers_done {
                if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
                    assert!(
                        head.starts_with("HTTP/1.") && head.contains(" 200 "),
                        "SSE answer: {head}"
                    );
                    assert!(
                        head.to_ascii_lowercase().contains("text/event-stream"),
                        "SSE answer: {head}"
                    );
                    self.buf.drain(..end + 4);
                    self.headers_done = true;
                    continue;
                }
            } else if let Some(end) = find(&self.buf, b"\n\n") {
                let block = String::from_utf8_lossy(&self.buf[..end]).to_string();
                self.buf.drain(..end + 2);
                let mut event = String::from("message");
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event:") {
                        event = e.trim().to_string();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push(d.strip_prefix(' ').unwrap_or(d).to_string());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some((event, data.join("\n")));
            }
            if !self.fill(deadline) {
                return None;
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---- small helpers ----

/// Value of one Prometheus sample: the line of `name` whose labels contain every `labels`
/// pair (`("source", "mqtt")`); 0 when absent.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Standard base64 (for HTTP Basic auth).
pub fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Creates the plant every test works on: models `site`, `line`, `pump` (signals
/// `bearing_temp` float °C with a normal range, `running` bool, `cycles` int) and twins
/// `site-1` → `line-1` → `pump-1`, `pump-2`, with `pump-1` feeding `pump-2`.
pub fn create_plant(s: &TestServer) {
    for model in [site_model(), line_model(), pump_model()] {
        let (status, body) = s.post("/api/v1/models", Some(&s.admin_token), &model);
        assert_eq!(status, 201, "create model {model}: {body}");
        assert_eq!(body, model, "the created model is echoed");
    }
    for twin in plant_twins() {
        let (status, body) = s.post("/api/v1/twins", Some(&s.admin_token), &twin);
        assert_eq!(status, 201, "create twin {twin}: {body}");
    }
}

pub fn pump_model() -> Value {
    serde_json::json!({
        "id": "pump",
        "name": "Centrifugal pump",
        "version": 1,
        "description": "",
        "signals": [
            {"name": "bearing_temp", "unit": "°C", "kind": "float", "min": -20.0, "max": 120.0, "role": "output"},
            {"name": "running", "unit": "", "kind": "bool", "role": "output"},
            {"name": "cycles", "unit": "", "kind": "int", "role": "output"}
        ],
        "properties": [{"name": "serial", "kind": "string", "required": false}],
        "relations": [{"kind": "feeds", "target_model": "pump"}]
    })
}

pub fn site_model() -> Value {
    serde_json::json!({
        "id": "site", "name": "Site", "version": 1, "description": "",
        "signals": [], "properties": [], "relations": []
    })
}

pub fn line_model() -> Value {
    serde_json::json!({
        "id": "line", "name": "Production line", "version": 1, "description": "",
        "signals": [], "properties": [], "relations": []
    })
}

/// In creation order (parents and relation targets first).
pub fn plant_twins() -> Vec<Value> {
    vec![
        serde_json::json!({"id": "site-1", "model": "site", "name": "Plant A"}),
        serde_json::json!({"id": "line-1", "model": "line", "name": "Line 1", "parent": "site-1"}),
        serde_json::json!({"id": "pump-2", "model": "pump", "name": "Pump 2", "parent": "line-1",
            "properties": {"serial": "P-0002"}}),
        serde_json::json!({"id": "pump-1", "model": "pump", "name": "Pump 1", "parent": "line-1",
            "properties": {"serial": "P-0001"},
            "relations": [{"kind": "feeds", "target": "pump-2"}]}),
    ]
}

/// The `id`s of a JSON array of twins or models, sorted.
pub fn ids(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list
        .as_array()
        .unwrap_or_else(|| panic!("expected an array, got {list}"))
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// RFC 3339 of `T0 + offset_ms`, as the server formats times.
pub fn t0_plus(offset_ms: i64) -> String {
    let secs = (T0_MS + offset_ms) / 1000;
    let ms = (T0_MS + offset_ms) % 1000;
    // T0 is 2026-01-31T12:00:00Z; offsets in the tests stay within that day.
    let day_secs = 12 * 3600 + (secs - T0_MS / 1000);
    let (h, m, s) = (day_secs / 3600, (day_secs / 60) % 60, day_secs % 60);
    if ms == 0 {
        format!("2026-01-31T{h:02}:{m:02}:{s:02}Z")
    } else {
        format!("2026-01-31T{h:02}:{m:02}:{s:02}.{ms:03}Z")
    }
}

/// Nanoseconds of `T0 + offset_ms`.
pub fn t0_ns(offset_ms: i64) -> i64 {
    (T0_MS + offset_ms) * 1_000_000
}

/// Posts simulated readings through `POST /api/v1/readings` in batches of `batch`, as
/// `twin` when given (else each reading's own twin), asserting every batch is accepted.
#[allow(dead_code)]
pub fn post_sim_readings(
    s: &TestServer,
    token: &str,
    readings: &[doppel_model::Reading],
    twin: Option<&str>,
    batch: usize,
) {
    for chunk in readings.chunks(batch.max(1)) {
        let body: Vec<Value> = chunk
            .iter()
            .map(|r| {
                let values: serde_json::Map<String, Value> = r
                    .values
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap()))
                    .collect();
                serde_json::json!({"twin": twin.unwrap_or(&r.twin), "ts": r.ts / 1_000_000, "values": values})
            })
            .collect();
        let (st, answer) = s.post("/api/v1/readings", Some(token), &Value::Array(body));
        assert_eq!(st, 200, "{answer}");
    }
}
