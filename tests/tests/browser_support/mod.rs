//! Headless Chromium driven through chromedriver's W3C WebDriver API, with
//! plain HTTP calls (ureq): no browser-automation crate needed.
//!
//! [`Browser::start`] checks that the Debian packages `chromium` and
//! `chromium-driver` are installed (deploy/install.sh installs them): when
//! they are not, it panics saying so, unless
//! `REPLICATOR_SKIP_BROWSER_TESTS=1`, in which case [`Browser::start`]
//! returns `None` after printing that the test is skipped. chromedriver runs
//! under the harness ([`Process`]) on a free port and starts Chromium with
//! the flags of [`CHROMIUM_FLAGS`] and a new empty profile directory. On
//! drop (a failing test included) the session is deleted, which closes
//! Chromium; any Chromium process still using the profile is then killed by
//! its pid, and chromedriver with it.

#![allow(dead_code)]

use replicator_tests::Process;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Set to 1 to skip browser tests where Chromium cannot be installed.
pub const SKIP_VAR: &str = "REPLICATOR_SKIP_BROWSER_TESTS";

/// How Chromium is started (plus `--user-data-dir` and `--window-size`).
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--disable-dev-shm-usage",
];

/// W3C key of an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A WebDriver error answer.
#[derive(Debug)]
pub struct WdError {
    pub error: String,
    pub message: String,
}

/// A Chromium session.
pub struct Browser {
    driver: Process,
    base: String,
    session: Option<String>,
    profile: tempfile::TempDir,
    agent: ureq::Agent,
}

impl Browser {
    /// chromedriver and a Chromium session with a `width`x`height` window;
    /// `None` when browser tests are skipped.
    pub async fn start(width: u32, height: u32) -> Option<Browser> {
        if std::env::var(SKIP_VAR).is_ok_and(|v| v == "1") {
            eprintln!("skipped: {SKIP_VAR} is set");
            return None;
        }
        for (bin, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            if !Path::new(bin).is_file() {
                panic!(
                    "{bin} is missing: install the Debian packages chromium and chromium-driver \
                     (deploy/install.sh does: apt-get install {package}), \
                     or set {SKIP_VAR}=1 to skip the browser tests"
                );
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut cmd = std::process::Command::new(CHROMEDRIVER);
        cmd.arg(format!("--port={port}"));
        let driver = Process::spawn_command("chromedriver", cmd);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let profile = tempfile::Builder::new()
            .prefix("replicator-chromium-")
            .tempdir()
            .expect("profile dir");
        let mut browser = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            session: None,
            profile,
            agent,
        };
        browser.wait_ready().await;
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!(
            "--user-data-dir={}",
            browser.profile.path().display()
        ));
        args.push(format!("--window-size={width},{height}"));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let started = Instant::now();
        let value = browser
            .raw("POST", "/session", Some(caps))
            .unwrap_or_else(|e| panic!("new Chromium session: {e:?}"));
        let id = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {value}"))
            .to_string();
        eprintln!(
            "chromium {} started in {:?}",
            value["capabilities"]["browserVersion"],
            started.elapsed()
        );
        browser.session = Some(id);
        Some(browser)
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(v) = self.raw("GET", "/status", None) {
                if v["ready"] == true {
                    return;
                }
            }
            if let Some(status) = self.driver.try_exit() {
                panic!("chromedriver exited ({status})\n{}", self.driver.tail(30));
            }
            if Instant::now() >= deadline {
                panic!("chromedriver not ready in 20 s\n{}", self.driver.tail(30));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One WebDriver call; the answer's `value`, or its error.
    fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, WdError> {
        let url = format!("{}{path}", self.base);
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Content-Type", "application/json");
        let result = match body {
            Some(b) => self
                .agent
                .run(req.body(b.to_string().into_bytes()).unwrap()),
            None => self.agent.run(req.body(()).unwrap()),
        };
        let mut resp = result.map_err(|e| WdError {
            error: "transport".into(),
            message: format!("{method} {url}: {e}"),
        })?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| WdError {
                error: "transport".into(),
                message: e.to_string(),
            })?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let value = v["value"].clone();
        if status >= 400 || value.get("error").is_some_and(|e| e.is_string()) {
            return Err(WdError {
                error: value["error"].as_str().unwrap_or("http").to_string(),
                message: value["message"]
                    .as_str()
                    .map_or_else(|| text.chars().take(300).collect(), |m| m.to_string()),
            });
        }
        Ok(value)
    }

    fn session_path(&self, rest: &str) -> String {
        format!(
            "/session/{}{rest}",
            self.session.as_deref().expect("a session")
        )
    }

    /// A session call that must succeed.
    fn call(&self, method: &str, rest: &str, body: Option<Value>) -> Value {
        self.raw(method, &self.session_path(rest), body)
            .unwrap_or_else(|e| panic!("WebDriver {method} {rest}: {e:?}"))
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) in the page.
    pub fn eval(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// The element matching the CSS `selector`, if any.
    pub fn find(&self, selector: &str) -> Option<String> {
        match self.raw(
            "POST",
            &self.session_path("/element"),
            Some(json!({"using": "css selector", "value": selector})),
        ) {
            Ok(v) => v[ELEMENT_KEY].as_str().map(str::to_string),
            Err(e) if e.error == "no such element" => None,
            Err(e) => panic!("find {selector}: {e:?}"),
        }
    }

    /// Clicks the element matching `selector` as a person would (real mouse
    /// events), finding it again when the page replaced it meanwhile.
    pub async fn click(&self, selector: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(id) = self.find(selector) {
                match self.raw(
                    "POST",
                    &self.session_path(&format!("/element/{id}/click")),
                    Some(json!({})),
                ) {
                    Ok(_) => return,
                    Err(e) if e.error.contains("stale") || e.error.contains("intercepted") => {}
                    Err(e) => panic!("click {selector}: {e:?}"),
                }
            }
            if Instant::now() >= deadline {
                panic!("no clickable {selector} within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types `text` into the element matching `selector`.
    pub fn type_into(&self, selector: &str, text: &str) {
        let id = self
            .find(selector)
            .unwrap_or_else(|| panic!("no {selector}"));
        self.call("POST", &format!("/element/{id}/clear"), Some(json!({})));
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        let v = self.call("GET", "/screenshot", None);
        decode_base64(v.as_str().expect("base64 screenshot"))
    }

    /// Saves a screenshot as `<target>/test-artifacts/<name>` and returns
    /// the path.
    pub fn save_screenshot(&self, name: &str) -> PathBuf {
        let dir = artifacts_dir();
        std::fs::create_dir_all(&dir).expect("artifacts dir");
        let path = dir.join(name);
        std::fs::write(&path, self.screenshot()).expect("write screenshot");
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if self.session.is_some() {
            if std::thread::panicking() {
                if let Ok(v) = self.raw("GET", &self.session_path("/screenshot"), None) {
                    if let Some(b64) = v.as_str() {
                        let path = artifacts_dir().join("console-failure.png");
                        if std::fs::create_dir_all(artifacts_dir()).is_ok()
                            && std::fs::write(&path, decode_base64(b64)).is_ok()
                        {
                            eprintln!("screenshot of the failure: {}", path.display());
                        }
                    }
                }
            }
            let _ = self.raw("DELETE", &self.session_path(""), None);
            self.session = None;
        }
        kill_profile_users(self.profile.path());
        // then `driver` is dropped: chromedriver is killed
    }
}

/// `<target>/test-artifacts`.
pub fn artifacts_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("test-artifacts")
}

/// SIGKILLs, by pid, every process whose command line names `profile` (the
/// Chromium processes of this test's own session), should any outlive it.
fn kill_profile_users(profile: &Path) {
    let needle = profile.display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmdline).contains(&needle) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// Standard base64 (padding optional, whitespace ignored).
pub fn decode_base64(s: &str) -> Vec<u8> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let Some(v) = val(c) else { continue };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[test]
fn base64_decodes() {
    assert_eq!(decode_base64("aGVsbG8="), b"hello");
    assert_eq!(decode_base64("aGVsbG8h"), b"hello!");
    assert_eq!(decode_base64("iVBORw0KGgo="), b"\x89PNG\r\n\x1a\n");
}
