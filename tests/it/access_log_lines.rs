//! The access log as the binary writes it: one line per request on stderr,
//! in the text and the JSON log formats, with every documented field.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const CONFIG: &str = "\
upstreams:
  m:
    provider: mock
models:
  demo:
    targets: [{ upstream: m, model: demo }]
";

/// The binary on an ephemeral port, and its stderr lines as they come.
struct Running {
    child: Child,
    addr: String,
    lines: mpsc::Receiver<String>,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(log_format: &str) -> Running {
    let dir = std::env::temp_dir().join(format!(
        "switchyard-access-{}-{log_format}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("router.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["--config", config.to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0", "--log-format", log_format])
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run switchyard");
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut running = Running {
        child,
        addr: String::new(),
        lines,
        _dir: TempDir(dir),
    };
    let listening = running.wait_for("listening");
    running.addr = listening
        .split(|c: char| c == '"' || c.is_whitespace())
        .find_map(|word| {
            let word = word.trim_start_matches("addr=");
            word.parse::<std::net::SocketAddr>().ok()
        })
        .unwrap_or_else(|| panic!("no address in {listening:?}"))
        .to_string();
    running
}

impl Running {
    /// The next stderr line containing `needle` (bounded wait).
    fn wait_for(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no stderr line with {needle:?} within 10 s"),
            }
        }
    }

    /// A non-streamed chat completion over a plain socket; the status code.
    fn chat(&self, model: &str) -> u16 {
        let body =
            format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#);
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             x-request-id: req_test_1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer[9..12].parse().unwrap()
    }
}

#[test]
fn text_access_lines_carry_every_field() {
    let router = start("text");
    assert_eq!(router.chat("demo"), 200);
    let line = router.wait_for("request request_id=");
    let (_, fields) = line.split_once("  INFO request ").expect(&line);
    assert!(
        line.as_bytes()[..4].iter().all(u8::is_ascii_digit),
        "{line}"
    );
    for expected in [
        "request_id=req_test_1 ",
        "method=POST ",
        "path=/v1/chat/completions ",
        "model=\"demo\" ",
        "target=\"m/demo\" ",
        "attempts=1 ",
        "status=200 ",
        "outcome=\"completed\" ",
        "prompt_tokens=",
        "completion_tokens=",
        " cost_usd=0.0",
    ] {
        assert!(fields.contains(expected), "{expected:?} missing in {line}");
    }
    let duration = fields
        .split(' ')
        .find_map(|f| f.strip_prefix("duration_ms="))
        .unwrap();
    let (whole, hundredths) = duration.split_once('.').unwrap();
    assert!(
        whole.parse::<u64>().is_ok() && hundredths.len() == 2,
        "{duration}"
    );

    // A model name with a quote and a newline is escaped, never raw.
    assert_eq!(router.chat("no\\\"such\\nmodel"), 404);
    let line = router.wait_for("request request_id=");
    assert!(line.contains(r#"model="no\"such\nmodel""#), "{line}");
    assert!(line.contains("status=404"), "{line}");
}

#[test]
fn json_access_lines_are_json_with_typed_fields() {
    let router = start("json");
    assert_eq!(router.chat("demo"), 200);
    let line = router.wait_for("\"message\":\"request\"");
    let v: serde_json::Value = serde_json::from_str(&line).expect(&line);
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["request_id"], "req_test_1");
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/v1/chat/completions");
    assert_eq!(v["model"], "demo");
    assert_eq!(v["target"], "m/demo");
    assert_eq!(v["attempts"], 1);
    assert_eq!(v["status"], 200);
    assert_eq!(v["outcome"], "completed");
    assert!(v["duration_ms"].as_f64().is_some(), "{line}");
    assert!(v["ttft_ms"].as_f64().is_some(), "{line}");
    assert!(v["bytes"].as_u64().unwrap() > 0, "{line}");
    assert!(v["completion_tokens"].as_u64().unwrap() > 0, "{line}");
    assert_eq!(v["cost_usd"], 0.0);
    let ts = v["timestamp"].as_str().unwrap();
    assert_eq!(ts.len(), 27, "{ts}");
    assert!(ts.ends_with('Z'), "{ts}");
}
