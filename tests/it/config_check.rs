//! `switchyard check FILE` and config validation as users meet them: the
//! bundled `router.yaml` passes and prints its model table; a broken config
//! fails with every mistake listed, each under its key path; and the server
//! refuses to start on a config that `check` rejects.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::support;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");
const BUNDLED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/router.yaml");

static NEXT: AtomicU64 = AtomicU64::new(0);

/// Writes `yaml` to a fresh temporary file; removed on drop.
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(yaml: &str) -> TempConfig {
        let path = std::env::temp_dir().join(format!(
            "switchyard-check-{}-{}.yaml",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, yaml).expect("write the test config");
        TempConfig(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn shown(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `switchyard check <path>` with a controlled environment.
fn check(path: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command
        .arg("check")
        .arg(path)
        .env_remove("OPENAI_API_KEY")
        .env_remove("SWITCHYARD_CONFIG")
        .env_remove("RUST_LOG");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run the switchyard binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts that `stderr` reports exactly `errors` (each as
/// `<file>: <path>: <message>`, in any order) under a `<file>: N errors` header.
fn assert_reports(stderr: &str, file: &str, errors: &[&str]) {
    let n = errors.len();
    let header = format!("{file}: {n} error{}", if n == 1 { "" } else { "s" });
    assert!(
        stderr.lines().any(|l| l == header),
        "missing header {header:?} in:\n{stderr}"
    );
    let reported: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .collect();
    for error in errors {
        let line = format!("{file}: {error}");
        assert!(
            reported.contains(&line.as_str()),
            "missing error line\n  {line}\nin:\n{stderr}"
        );
    }
    assert_eq!(
        reported.len(),
        n,
        "unexpected extra error lines in:\n{stderr}"
    );
}

#[test]
fn the_bundled_router_yaml_passes_and_prints_the_model_table() {
    let output = check(Path::new(BUNDLED), &[]);
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);

    assert!(
        output.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        output.status
    );
    let lines: Vec<&str> = stdout.lines().collect();
    for expected in [
        "models (5):",
        "  demo",
        "    -> mock (mock, built in) as \"demo\", weight 1",
        "  qwen2.5:0.5b",
        "    -> ollama-qwen (ollama, http://localhost:11435) as \"qwen2.5:0.5b\", weight 1",
        "    fallbacks: phi3:mini",
        "  phi3:mini",
        "    -> ollama-phi (ollama, http://localhost:11436) as \"phi3:mini\", weight 1",
        "  gpt-4o-mini",
        "    -> openai (openai, https://api.openai.com/v1) as \"gpt-4o-mini\", weight 1  [disabled: OPENAI_API_KEY is not set]",
        "  gpt-4o",
        "    -> openai (openai, https://api.openai.com/v1) as \"gpt-4o-2024-08-06\", weight 1  [disabled: OPENAI_API_KEY is not set]",
        "    fallbacks: gpt-4o-mini",
    ] {
        assert!(lines.contains(&expected), "missing {expected:?} in:\n{stdout}");
    }
    assert_eq!(
        lines.last().copied(),
        Some(format!("{BUNDLED}: ok").as_str())
    );
    assert!(
        stderr.contains(
            "upstreams.openai.api_key: environment variable OPENAI_API_KEY is not set; upstream \"openai\" is disabled until it is (used by gpt-4o-mini, gpt-4o)"
        ),
        "an unset key is a warning naming the variable:\n{stderr}"
    );
}

#[test]
fn the_bundled_router_yaml_with_its_key_set_has_nothing_disabled_and_no_key_printed() {
    let output = check(
        Path::new(BUNDLED),
        &[("OPENAI_API_KEY", "sk-test-check-bundled-4242")],
    );
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);

    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(!stdout.contains("disabled"), "{stdout}");
    assert!(!stderr.contains("OPENAI_API_KEY"), "{stderr}");
    assert!(
        !stdout.contains("sk-test-check-bundled-4242")
            && !stderr.contains("sk-test-check-bundled-4242"),
        "check must never print a key"
    );
}

const BROKEN: &str = r#"
server:
  listen: 127.0.0.1:0
upstreams:
  openai:
    provider: openai
    base_url: https://api.openai.com/v1
    api_key: sk-test-broken-1
    timeouts:
      first_byte: 5 parsecs
    health_check:
      interval: soon
  azure-east:
    provider: azure
    base_url: https://example.openai.azure.com
    api_key: sk-test-broken-2
    base_ulr: https://typo.example
  local:
    provider: olama
    base_url: http://localhost:11434
models:
  gpt-4o:
    targets:
      - { upstream: openai }
      - { upstream: azure-eats, deployment: gpt-4o }
    fallbacks: [gpt-4o-mnii]
  gpt-4o-mini:
    targets: [openai]
  a:
    targets: [openai]
    fallbacks: [b]
  b:
    targets: [openai]
    fallbacks: [a]
"#;

const BROKEN_ERRORS: [&str; 7] = [
    r#"upstreams.openai.timeouts.first_byte: "5 parsecs" has unknown unit "parsecs" (use ms, s, m or h)"#,
    r#"upstreams.openai.health_check.interval: "soon" is not a duration (write e.g. 500ms, 30s, 5m)"#,
    r#"upstreams."azure-east".base_ulr: unknown key; did you mean "base_url"?"#,
    r#"upstreams.local.provider: unknown provider "olama"; did you mean "ollama"? (providers: openai, openai-compatible, ollama, azure, anthropic, gemini, bedrock, mock)"#,
    r#"models."gpt-4o".targets[1].upstream: no upstream named "azure-eats"; did you mean "azure-east"?"#,
    r#"models."gpt-4o".fallbacks[0]: unknown model "gpt-4o-mnii"; did you mean "gpt-4o-mini"?"#,
    "models.b.fallbacks: fallbacks form a loop: a -> b -> a",
];

#[test]
fn a_broken_config_fails_with_every_error_and_its_key_path() {
    let config = TempConfig::new(BROKEN);

    let output = check(config.path(), &[]);
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);

    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains("models ("),
        "no table for a broken config:\n{stdout}"
    );
    assert_reports(&stderr, &config.shown(), &BROKEN_ERRORS);
    assert!(!stderr.contains("sk-test-broken"), "keys are never printed");
}

#[test]
fn more_mistakes_are_each_reported_under_their_key_path() {
    let config = TempConfig::new(
        r#"
server:
  max_body_bytes: 12 lumps
  auth:
    keys: ["${SWITCHYARD_TEST_CHECK_UNSET_ROUTER_KEY_Z5}"]
  shutdown_grace: 30 fortnights
upstreams:
  openai:
    provider: openai
    api_key: sk-test-more-1
  vllm:
    provider: openai-compatible
  ollama:
    provider: ollama
    base_url: localhost:11434
    api_version: "2024-10-21"
models:
  selfish:
    targets: [openai]
    fallbacks: [selfish]
  weightless:
    targets:
      - { upstream: openai, weight: 0 }
  misplaced:
    targets:
      - { upstream: openai, deployment: gpt-4o }
  typo:
    tagrets: [openai]
  heavy:
    targets:
      - { upstream: openai, weight: 2000000 }
"#,
    );

    let output = check(config.path(), &[]);
    let stderr = text(&output.stderr);

    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_reports(
        &stderr,
        &config.shown(),
        &[
            r#"server.max_body_bytes: "12 lumps" has unknown unit "lumps" (use B, KiB, MiB, GiB, KB, MB or GB)"#,
            r#"server.shutdown_grace: "30 fortnights" has unknown unit "fortnights" (use ms, s, m or h)"#,
            "server.auth.keys[0]: environment variable SWITCHYARD_TEST_CHECK_UNSET_ROUTER_KEY_Z5 is not set (set it, or write ${SWITCHYARD_TEST_CHECK_UNSET_ROUTER_KEY_Z5:-default})",
            "upstreams.vllm.base_url: missing: provider openai-compatible needs the server's address, e.g. http://localhost:8000/v1",
            r#"upstreams.ollama.base_url: "localhost:11434" must start with http:// or https://"#,
            "upstreams.ollama.api_version: only Azure upstreams take an `api_version`",
            r#"models.typo.tagrets: unknown key; did you mean "targets"?"#,
            "models.typo.targets: missing: give the model at least one target, e.g. targets: [{ upstream: openai }]",
            "models.heavy.targets[0].weight: expected a whole number from 0 to 1000000, found 2000000",
            "models.selfish.fallbacks[0]: a model cannot fall back to itself",
            "models.weightless.targets: every target has weight 0, so none would ever be chosen",
            r#"models.misplaced.targets[0].deployment: only Azure upstreams take a `deployment`; upstream "openai" is openai"#,
        ],
    );
}

#[test]
fn a_config_without_models_says_so() {
    let config = TempConfig::new("upstreams:\n  builtin: { provider: mock }\n");

    let output = check(config.path(), &[]);

    assert_eq!(output.status.code(), Some(1));
    assert_reports(
        &text(&output.stderr),
        &config.shown(),
        &["models: missing: declare at least one model"],
    );
}

#[test]
fn a_required_variable_fails_with_its_own_message() {
    let config = TempConfig::new(
        "upstreams:\n  openai:\n    provider: openai\n    api_key: \"${SWITCHYARD_TEST_CHECK_REQUIRED_KEY_B8:?put your OpenAI key here}\"\nmodels:\n  m: { targets: [openai] }\n",
    );

    let output = check(config.path(), &[]);

    assert_eq!(output.status.code(), Some(1));
    assert_reports(
        &text(&output.stderr),
        &config.shown(),
        &["upstreams.openai.api_key: environment variable SWITCHYARD_TEST_CHECK_REQUIRED_KEY_B8 is required: put your OpenAI key here"],
    );

    let with_it = check(
        config.path(),
        &[("SWITCHYARD_TEST_CHECK_REQUIRED_KEY_B8", "sk-test-required")],
    );
    assert!(with_it.status.success(), "{}", text(&with_it.stderr));
}

#[test]
fn invalid_yaml_is_reported_with_its_line() {
    let config = TempConfig::new("models:\n  m: { targets: [x]\n  n: 1\n");

    let output = check(config.path(), &[]);
    let stderr = text(&output.stderr);

    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}: 1 error", config.shown())),
        "{stderr}"
    );
    assert!(stderr.contains("not valid YAML"), "{stderr}");
    assert!(stderr.contains("line "), "{stderr}");
}

#[test]
fn a_missing_file_is_an_error_not_a_crash() {
    let path = std::env::temp_dir().join("switchyard-check-does-not-exist-91c2.yaml");

    let output = check(&path, &[]);
    let stderr = text(&output.stderr);

    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot read the file"), "{stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
}

#[tokio::test]
async fn the_server_refuses_to_start_on_an_invalid_config() {
    let config = TempConfig::new(BROKEN);

    let started = switchyard::start(switchyard::ServeOptions {
        config_path: config.path().to_owned(),
        listen: Some("127.0.0.1:0".parse().unwrap()),
    })
    .await;

    let Err(err) = started else {
        panic!("a broken config must not start a server");
    };
    assert!(
        matches!(err, switchyard::server::StartError::Config(_)),
        "{err}"
    );
    let message = err.to_string();
    assert_reports(&message, &config.shown(), &BROKEN_ERRORS);
}

#[tokio::test]
async fn the_server_starts_on_the_bundled_config() {
    let server = switchyard::start(switchyard::ServeOptions {
        config_path: BUNDLED.into(),
        listen: Some("127.0.0.1:0".parse().unwrap()),
    })
    .await
    .unwrap_or_else(|e| panic!("the bundled config must start: {e}"));
    let url = format!("http://{}/v1/chat/completions", server.local_addr());

    let reply = support::client::post_json(
        &url,
        r#"{"model":"demo","messages":[{"role":"user","content":"hello"}]}"#,
    )
    .await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["model"], "demo");
    server.shutdown().await;
}

#[test]
fn a_key_with_a_trailing_newline_is_an_error_that_never_shows_the_key() {
    let config = TempConfig::new(
        "upstreams:\n  openai:\n    provider: openai\n    api_key: \"${SWITCHYARD_TEST_CHECK_NEWLINE_KEY}\"\nmodels:\n  m: { targets: [openai] }\n",
    );

    let output = check(
        config.path(),
        &[("SWITCHYARD_TEST_CHECK_NEWLINE_KEY", "sk-test-secret-123\n")],
    );

    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert_reports(
        &stderr,
        &config.shown(),
        &["upstreams.openai.api_key: contains a space or control character (a trailing newline from a key file?); it could not be sent. Remove it from the key"],
    );
    assert!(!stderr.contains("sk-test-secret"), "{stderr}");
}

#[test]
fn headers_the_router_sets_itself_are_errors_and_values_are_not_echoed() {
    let config = TempConfig::new(
        "upstreams:\n  up:\n    provider: openai-compatible\n    base_url: sk-proj-pasted-secret-key\n    headers:\n      Host: example.com\n      transfer-encoding: chunked\n      x-ok: fine\nmodels:\n  m: { targets: [up] }\n",
    );

    let output = check(config.path(), &[]);

    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert_reports(
        &stderr,
        &config.shown(),
        &[
            "upstreams.up.base_url: must start with http:// or https://",
            "upstreams.up.headers.Host: is set by the router for each request (framing and connection headers are its own); remove it",
            "upstreams.up.headers.\"transfer-encoding\": is set by the router for each request (framing and connection headers are its own); remove it",
        ],
    );
    assert!(!stderr.contains("sk-proj-pasted"), "{stderr}");
}

#[test]
fn zero_durations_nested_references_and_interpolated_model_names_are_errors() {
    let config = TempConfig::new(concat!(
        "upstreams:\n",
        "  up:\n",
        "    provider: openai-compatible\n",
        "    base_url: \"${SWITCHYARD_TEST_CHECK_UNSET_A:-${SWITCHYARD_TEST_CHECK_UNSET_B}}\"\n",
        "    health_check: { interval: 0s }\n",
        "    timeouts: { idle: 0s }\n",
        "  ok:\n",
        "    provider: openai-compatible\n",
        "    base_url: http://127.0.0.1:9\n",
        "models:\n",
        "  m:\n",
        "    targets: [ok]\n",
        "    deadline: 0s\n",
        "  \"${SWITCHYARD_TEST_CHECK_MODEL}\":\n",
        "    targets: [ok]\n",
    ));

    let output = check(config.path(), &[("SWITCHYARD_TEST_CHECK_MODEL", "gpt")]);

    assert_eq!(output.status.code(), Some(1));
    assert_reports(
        &text(&output.stderr),
        &config.shown(),
        &[
            "upstreams.up.base_url: bad ${…} reference: `${SWITCHYARD_TEST_CHECK_UNSET_A:-${SWITCHYARD_TEST_CHECK_UNSET_B}` nests a `${…}` inside it, which is not supported: use one variable per reference (e.g. set a default in the environment)",
            "upstreams.up.health_check.interval: must be at least 50ms",
            "upstreams.up.timeouts.idle: must be at least 1ms",
            "models.m.deadline: must be at least 1ms",
            "models.\"${SWITCHYARD_TEST_CHECK_MODEL}\": model names are not interpolated: write the name clients send (a `${…}` may go in a target's `model:`)",
        ],
    );
}

#[test]
fn tls_files_that_are_missing_or_do_not_match_fail_the_check() {
    let dir = std::env::temp_dir().join(format!("switchyard-check-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let pki = support::pki::make_pki("check-tls");
    let other = support::pki::reissue(&pki);
    let base = "upstreams:\n  local: { provider: mock }\nmodels:\n  demo: { targets: [local] }\n";
    let write = |name: &str, cert: &str, key: &str| {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!("server:\n  tls: {{ cert: {cert}, key: {key} }}\n{base}"),
        )
        .unwrap();
        path
    };
    let cert = pki.dir.join("server.pem");
    let key = pki.dir.join("server.key");

    let good = write(
        "good.yaml",
        &cert.display().to_string(),
        &key.display().to_string(),
    );
    let output = check(&good, &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));

    let missing = write("missing.yaml", "nope.pem", &key.display().to_string());
    let output = check(&missing, &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("server.tls.cert: cannot read") && stderr.contains("nope.pem"),
        "{stderr}"
    );

    let mismatched = write(
        "mismatched.yaml",
        &cert.display().to_string(),
        &other.join("server.key").display().to_string(),
    );
    let output = check(&mismatched, &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("is not the key of the certificate"),
        "{stderr}"
    );
    assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn configs_over_the_size_limits_are_refused_with_the_limit() {
    let mut yaml = String::from("upstreams:\n  local: { provider: mock }\nmodels:\n");
    for i in 0..20_001 {
        yaml.push_str(&format!("  m{i}: {{ targets: [local] }}\n"));
    }
    let many = TempConfig::new(&yaml);
    let output = check(many.path(), &[]);
    assert_eq!(output.status.code(), Some(1));
    assert_reports(
        &text(&output.stderr),
        &many.shown(),
        &["models: 20001 models; one config may declare at most 20000 (split them across routers)"],
    );

    let mut huge = yaml.clone();
    while huge.len() <= 8 << 20 {
        huge.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    let huge = TempConfig::new(&huge);
    let output = check(huge.path(), &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("the file is larger than 8 MiB"),
        "{}",
        text(&output.stderr)
    );
}
