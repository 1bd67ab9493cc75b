//! The walker, the validator and the compiler in-process, through
//! [`load_str`]: each upstream key's reader, its defaults and its mistakes.
//! (`tests/it/config_check.rs` runs the same through `switchyard check`.)

use std::time::Duration;

use super::*;

/// Loads `yaml` with `env` as the whole environment.
fn load(yaml: &str, env: &[(&str, &str)]) -> Result<Loaded, ConfigErrors> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    load_str(yaml, "router.yaml", &lookup, &Registry::default(), 1)
}

/// `yaml` with one upstream `u` (whose keys are `upstream`) and a model `m`
/// served by it.
fn with_upstream(upstream: &str) -> String {
    let body: String = upstream
        .lines()
        .map(|line| format!("    {line}\n"))
        .collect();
    format!("upstreams:\n  u:\n{body}models:\n  m:\n    targets: [{{ upstream: u }}]\n")
}

fn errors(yaml: &str, env: &[(&str, &str)]) -> Vec<String> {
    match load(yaml, env) {
        Ok(_) => Vec::new(),
        Err(e) => e.errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn each_upstream_key_reports_its_own_mistake_under_its_path() {
    // (upstream keys, the error expected: its path and a part of its message)
    let cases: &[(&str, &str, &str)] = &[
        (
            "base_url: http://x/v1",
            "upstreams.u.provider",
            "missing: say which provider",
        ),
        (
            "provider: olama\nbase_url: http://x",
            "upstreams.u.provider",
            "did you mean \"ollama\"",
        ),
        (
            "provider: mock\nbase_url: http://x",
            "upstreams.u.base_url",
            "makes no network calls",
        ),
        (
            "provider: openai-compatible",
            "upstreams.u.base_url",
            "needs the server's address",
        ),
        (
            "provider: openai-compatible\nbase_url: ftp://x",
            "upstreams.u.base_url",
            "",
        ),
        ("provider: openai", "upstreams.u.api_key", "OPENAI_API_KEY"),
        (
            "provider: azure\nbase_url: https://x.openai.azure.com",
            "upstreams.u.api_key",
            "AZURE_OPENAI_API_KEY",
        ),
        (
            "provider: mock\napi_key: k",
            "upstreams.u.api_key",
            "takes no key",
        ),
        (
            "provider: openai\napi_key: \"sk-a b\"",
            "upstreams.u.api_key",
            "space or control character",
        ),
        (
            "provider: ollama\napi_version: \"1\"",
            "upstreams.u.api_version",
            "only Azure",
        ),
        (
            "provider: ollama\nheaders: { host: x }",
            "upstreams.u.headers.host",
            "set by the router",
        ),
        (
            "provider: ollama\nheaders: { \"a b\": x }",
            "upstreams.u.headers.\"a b\"",
            "not a valid header name",
        ),
        (
            "provider: ollama\ntimeouts: { idle: 0s }",
            "upstreams.u.timeouts.idle",
            "at least",
        ),
        (
            "provider: ollama\ntimeouts: { idel: 5s }",
            "upstreams.u.timeouts.idel",
            "did you mean \"idle\"",
        ),
        (
            "provider: ollama\ncircuit_breaker: { failures: 0 }",
            "upstreams.u.circuit_breaker.failures",
            "",
        ),
        (
            "provider: ollama\ncircuit_breaker: { cooldown: 10s, max_cooldown: 5s }",
            "upstreams.u.circuit_breaker.max_cooldown",
            "at least `cooldown`",
        ),
        (
            "provider: ollama\ninject_stream_usage: yes please",
            "upstreams.u.inject_stream_usage",
            "true or false",
        ),
        (
            "provider: mock\ninject_stream_usage: true",
            "upstreams.u.inject_stream_usage",
            "reports usage by itself",
        ),
        (
            "provider: ollama\nhealth_check: { path: health }",
            "upstreams.u.health_check.path",
            "must start with `/`",
        ),
        (
            "provider: ollama\nhealth_check: { interval: 1ms }",
            "upstreams.u.health_check.interval",
            "at least",
        ),
        (
            "provider: mock\nhealth_check: true",
            "upstreams.u.health_check",
            "always up",
        ),
        (
            "provider: anthropic",
            "upstreams.u.api_key",
            "ANTHROPIC_API_KEY",
        ),
        (
            "provider: ollama\nanthropic: { max_tokens: 10 }",
            "upstreams.u.anthropic",
            "only `provider: anthropic`",
        ),
        (
            "provider: anthropic\napi_key: k\nanthropic: { beta: [\"a,b\"] }",
            "upstreams.u.anthropic.beta[0]",
            "one beta feature name",
        ),
        (
            "provider: anthropic\napi_key: k\nanthropic: { max_tokens: 0 }",
            "upstreams.u.anthropic.max_tokens",
            "",
        ),
        (
            "provider: anthropic\napi_key: k\nanthropic: { versoin: x }",
            "upstreams.u.anthropic.versoin",
            "did you mean \"version\"",
        ),
        ("provider: gemini", "upstreams.u.api_key", "GEMINI_API_KEY"),
        (
            "provider: bedrock",
            "upstreams.u.bedrock.region",
            "AWS_REGION",
        ),
        (
            "provider: bedrock\nbedrock: { region: US_EAST }",
            "upstreams.u.bedrock.region",
            "not an AWS region",
        ),
        (
            "provider: bedrock\nbedrock: { region: us-east-1, access_key_id: AKID }",
            "upstreams.u.bedrock",
            "go together",
        ),
        (
            "provider: bedrock\napi_key: k\nbedrock: { region: us-east-1, session_token: t }",
            "upstreams.u.bedrock.session_token",
            "keep one of the two",
        ),
        (
            "provider: bedrock\nbedrock: { region: us-east-1, max_tokens: 0 }",
            "upstreams.u.bedrock.max_tokens",
            "",
        ),
        (
            "provider: ollama\nbedrock: { region: us-east-1 }",
            "upstreams.u.bedrock",
            "only `provider: bedrock`",
        ),
        (
            "provider: ollama\nmock: { reply: hi }",
            "upstreams.u.mock",
            "only `provider: mock`",
        ),
    ];
    for (keys, path, message) in cases {
        let found = errors(&with_upstream(keys), &[]);
        // An upstream whose provider is unreadable is left out, so the
        // model naming it is reported too; every other mistake stands alone.
        let expected = if *path == "upstreams.u.provider" {
            2
        } else {
            1
        };
        assert_eq!(found.len(), expected, "{keys:?}: got {found:#?}");
        assert!(
            found[0].starts_with(&format!("{path}: ")) && found[0].contains(message),
            "{keys:?}: expected `{path}: …{message}…`, got {:?}",
            found[0]
        );
    }
}

#[test]
fn every_mistake_of_one_upstream_is_reported_in_key_order() {
    let found = errors(
        &with_upstream(
            "provider: mock\nbase_url: http://x\napi_key: k\nhealth_check: true\nmock: { reply: 3 }",
        ),
        &[],
    );
    let paths: Vec<&str> = found.iter().map(|e| e.split(':').next().unwrap()).collect();
    assert_eq!(
        paths,
        [
            "upstreams.u.base_url",
            "upstreams.u.api_key",
            "upstreams.u.health_check"
        ],
        "{found:#?}"
    );
}

#[test]
fn defaults_fill_what_the_file_leaves_out() {
    let loaded = load(
        "upstreams:\n  local: { provider: ollama }\n  cloud: { provider: openai, api_key: sk-x }\n  az: { provider: azure, base_url: \"https://r.openai.azure.com\", api_key: k }\nmodels:\n  m:\n    targets: [{ upstream: local }, { upstream: cloud }, { upstream: az, deployment: d }]\n",
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let table = &loaded.table;
    let up = |name: &str| table.upstreams.iter().find(|u| u.name == name).unwrap();
    assert_eq!(up("local").base_url, "http://localhost:11434");
    assert_eq!(up("cloud").base_url, "https://api.openai.com/v1");
    // Local upstreams are probed by default; cloud ones are not.
    assert_eq!(
        up("local").health_check.as_ref().map(|(_, every)| *every),
        Some(Duration::from_secs(15))
    );
    assert!(up("cloud").health_check.is_none());
    assert_eq!(up("cloud").timeouts, crate::routing::Timeouts::default());
    assert!(up("cloud").credential.is_some());
    let credential = format!("{:?}", up("cloud").credential);
    assert!(
        !credential.contains("sk-x"),
        "the key must not print: {credential}"
    );
    let model = table.model("m").expect("model m");
    assert_eq!(model.targets.len(), 3);
    assert_eq!(loaded.listen.to_string(), "0.0.0.0:8000");
}

#[test]
fn gemini_and_bedrock_get_their_documented_defaults() {
    let loaded = load(
        "upstreams:\n  g: { provider: gemini, api_key: gk }\n  b: { provider: bedrock }\nmodels:\n  m:\n    targets: [{ upstream: g, model: gemini-2.5-flash }, { upstream: b, model: \"anthropic.claude-3-5-haiku-20241022-v1:0\" }]\n",
        &[
            ("AWS_REGION", "eu-central-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDENV"),
            ("AWS_SECRET_ACCESS_KEY", "secret-from-env"),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let table = &loaded.table;
    let up = |name: &str| table.upstreams.iter().find(|u| u.name == name).unwrap();
    assert_eq!(
        up("g").base_url,
        "https://generativelanguage.googleapis.com"
    );
    assert_eq!(
        up("b").base_url,
        "https://bedrock-runtime.eu-central-1.amazonaws.com"
    );
    // Cloud upstreams are not probed by default.
    assert!(up("g").health_check.is_none() && up("b").health_check.is_none());
    let Some(crate::routing::Translation::Bedrock {
        signing: Some(signing),
        ..
    }) = &up("b").translation
    else {
        panic!("bedrock signs with the keys from the environment");
    };
    assert_eq!(signing.region, "eu-central-1");
    assert_eq!(signing.credentials.access_key_id, "AKIDENV");
    assert!(signing.credentials.session_token.is_none());
    let model = table.model("m").expect("model m");
    assert_eq!(
        model.targets[0].url(crate::providers::Endpoint::ChatCompletions, true).map(ToString::to_string).as_deref(),
        Some("https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
    );
    assert_eq!(
        model.targets[1].url(crate::providers::Endpoint::ChatCompletions, false).map(ToString::to_string).as_deref(),
        Some("https://bedrock-runtime.eu-central-1.amazonaws.com/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse")
    );

    // Without keys in the file or the environment, the Bedrock upstream is
    // disabled (and says which variable to set), not the file.
    let loaded = load(
        &with_upstream("provider: bedrock\nbedrock: { region: us-east-1 }"),
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        loaded.table.upstreams[0].unresolved.as_deref(),
        Some("AWS_ACCESS_KEY_ID")
    );
    // A Bedrock API key needs no signing keys.
    let loaded = load(
        &with_upstream("provider: bedrock\napi_key: br-key\nbedrock: { region: us-east-1 }"),
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let upstream = &loaded.table.upstreams[0];
    assert_eq!(upstream.unresolved, None);
    assert!(matches!(
        upstream.translation,
        Some(crate::routing::Translation::Bedrock { signing: None, .. })
    ));
}

#[test]
fn an_unset_variable_disables_its_upstream_not_the_file() {
    let yaml =
        with_upstream("provider: openai-compatible\nbase_url: http://x/v1\napi_key: ${VLLM_KEY}");
    let loaded = load(&yaml, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        loaded.table.upstreams[0].unresolved.as_deref(),
        Some("VLLM_KEY")
    );
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.to_string().contains("VLLM_KEY")),
        "{:?}",
        loaded
            .warnings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );
    let loaded = load(&yaml, &[("VLLM_KEY", "k")]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.table.upstreams[0].unresolved, None);
}

#[test]
fn an_empty_key_from_the_environment_sends_no_credential() {
    let yaml = with_upstream(
        "provider: openai-compatible\nbase_url: http://x/v1\napi_key: ${VLLM_KEY:-}\nheaders: { OpenAI-Organization: \"${ORG:-}\" }",
    );
    let loaded = load(&yaml, &[]).unwrap_or_else(|e| panic!("{e}"));
    let upstream = &loaded.table.upstreams[0];
    assert!(upstream.credential.is_none());
    assert!(upstream.headers.get("openai-organization").is_none());
    assert_eq!(upstream.unresolved, None);
}

/// `yaml` with a mock upstream and a model `m` whose extra keys are `model`.
fn with_model(model: &str) -> String {
    let body: String = model.lines().map(|line| format!("    {line}\n")).collect();
    format!("upstreams:\n  u:\n    provider: mock\nmodels:\n  m:\n    targets: [{{ upstream: u }}]\n{body}")
}

#[test]
fn resume_prefill_and_request_policies_report_their_own_mistakes() {
    let cases: &[(&str, &str, &str)] = &[
        ("resume: maybe", "models.m.resume", "expected true, false"),
        (
            "resume: { max_resumes: 11 }",
            "models.m.resume.max_resumes",
            "0 to 10",
        ),
        (
            "resume: { max_text: 0 }",
            "models.m.resume.max_text",
            "between 1 byte",
        ),
        ("resume: { retries: 2 }", "models.m.resume.retries", ""),
        (
            "system_prompt: \"  \"",
            "models.m.system_prompt",
            "is empty",
        ),
        (
            "system_prompt: { text: x, mode: sometimes }",
            "models.m.system_prompt.mode",
            "if_missing",
        ),
        (
            "system_prompt: { mode: always }",
            "models.m.system_prompt.text",
            "missing",
        ),
        ("defaults: [1]", "models.m.defaults", "expected a mapping"),
        (
            "defaults: { messages: [] }",
            "models.m.defaults.messages",
            "can't have a default",
        ),
        (
            "clamp: { max_tokens: lots }",
            "models.m.clamp.max_tokens",
            "",
        ),
        (
            "clamp: { temperature: { min: 1, max: 0.5 } }",
            "models.m.clamp.temperature",
            "above `max`",
        ),
        (
            "clamp: { temperature: {} }",
            "models.m.clamp.temperature",
            "give `min`, `max`",
        ),
        ("on_exhausted: \"\"", "models.m.on_exhausted", "is empty"),
    ];
    for (keys, path, message) in cases {
        let errors = errors(&with_model(keys), &[]);
        assert!(
            errors
                .iter()
                .any(|e| e.contains(path) && e.contains(message)),
            "{keys:?}: expected an error at {path} saying {message:?}, got {errors:#?}"
        );
    }
    let prefill = errors(&with_upstream("provider: ollama\nprefill: sometimes"), &[]);
    assert!(
        prefill
            .iter()
            .any(|e| e.contains("upstreams.u.prefill") && e.contains("assistant")),
        "{prefill:#?}"
    );
    let mock = errors(&with_upstream("provider: mock\nprefill: assistant"), &[]);
    assert!(
        mock.iter().any(|e| e.contains("cannot continue")),
        "{mock:#?}"
    );
}

#[test]
fn resume_prefill_and_policies_compile_with_their_defaults() {
    let loaded = load(
        &format!(
            "{}    resume: true\n    system_prompt: Be brief.\n    defaults: {{ temperature: 0.2 }}\n    clamp: {{ max_tokens: 100 }}\n    on_exhausted: Try later.\n",
            with_upstream("provider: ollama\nbase_url: http://127.0.0.1:1")
        ),
        &[],
    )
    .expect("valid");
    let table = &loaded.table;
    let model = table.model("m").expect("m");
    assert_eq!(
        model.policy.resume,
        Some(crate::routing::ResumePolicy::default())
    );
    assert_eq!(
        model.targets[0].upstream.prefill,
        crate::routing::Prefill::Assistant
    );
    let requests = &model.requests;
    assert_eq!(
        requests.system_prompt.as_ref().map(|p| p.text.as_str()),
        Some("Be brief.")
    );
    assert_eq!(
        requests.defaults,
        vec![("temperature".to_owned(), "0.2".to_owned())]
    );
    assert_eq!(requests.clamps[0].max, Some(100.0));
    assert_eq!(requests.on_exhausted.as_deref(), Some("Try later."));
    let plain = load(
        &with_upstream("provider: openai-compatible\nbase_url: http://127.0.0.1:1"),
        &[],
    )
    .expect("valid");
    let model = plain.table.model("m").expect("m");
    assert_eq!(model.policy.resume, None);
    assert_eq!(
        model.targets[0].upstream.prefill,
        crate::routing::Prefill::None
    );
    assert!(!model.requests.edits_requests());
}

/// `yaml` with the mock model `m` (priced) and `keys:` as given.
fn with_keys(keys: &str) -> String {
    format!(
        "upstreams:\n  u:\n    provider: mock\nmodels:\n  m:\n    targets: [u]\n    pricing: {{ input_per_million: 1, output_per_million: 2 }}\n  free:\n    targets: [u]\nkeys:\n{keys}"
    )
}

const ZEROS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[test]
fn keys_are_read_with_their_limits_and_hashed() {
    let yaml = with_keys(&format!(
        "  - {{ name: a, sha256: {ZEROS}, models: [\"m*\"], rpm: 5, tpm: 100, max_parallel: 2, budget: {{ daily_usd: 1.5, monthly_usd: 20 }}, expires: \"2030-01-02T03:04:05Z\", labels: {{ team: x }} }}\n  - {{ name: b, key: \"${{B_KEY}}\" }}\n"
    ));
    let loaded = load(&yaml, &[("B_KEY", "sk-b")]).unwrap_or_else(|e| panic!("{e}"));
    let keys = &loaded.table.keys;
    let a = &keys.list[0];
    assert_eq!(a.name, "a");
    assert_eq!(a.limits.rpm, Some(5));
    assert_eq!(a.limits.tpm, Some(100));
    assert_eq!(a.limits.max_parallel, Some(2));
    assert_eq!(a.limits.budget.daily_usd, Some(1.5));
    assert_eq!(a.limits.budget.monthly_usd, Some(20.0));
    assert!(a.allows("m") && a.allows("mini") && !a.allows("free"));
    assert_eq!(&*a.labels, &[("team".to_owned(), "x".to_owned())]);
    assert!(a.expires.is_some());
    assert_eq!(keys.lookup("sk-b").map(|k| k.name.as_str()), Some("b"));
    assert!(keys.lookup("sk-c").is_none());
    // A budget with an unpriced model in the file: a warning, not an error.
    assert!(loaded.warnings.iter().any(|w| w
        .to_string()
        .starts_with("keys[0].budget: some models have no `pricing`")));
}

#[test]
fn key_mistakes_are_reported_under_their_paths() {
    let cases: &[(&str, &str)] = &[
        ("  - { name: a, key: sk-literal }\n", "keys[0].key: a clear key is not written in router.yaml"),
        ("  - { name: a, key: \"${UNSET_KEY}\" }\n", "keys[0].key: environment variable UNSET_KEY is not set"),
        ("  - { name: a }\n", "keys[0]: missing: give the key as `sha256: <hex>` or `key: ${VAR}`"),
        ("  - { name: \"a b\", sha256: 00 }\n", "keys[0].name: \"a b\" is not a key name"),
        ("  - { name: a, sha256: ab }\n", "keys[0].sha256: expected 64 hex digits"),
        ("  - { name: a, sha256: 12 }\n", "keys[0].sha256: YAML reads this digest as a number: quote it"),
        ("  - { name: a, sha256: ZZ, key: \"${K}\" }\n", "keys[0].key: give either `sha256` or `key`, not both"),
        ("  - { name: a, sha256: Z, tpm: 0 }\n", "keys[0].tpm: expected a whole number from 1"),
        ("  - { name: a, sha256: Z, expires: soon }\n", "keys[0].expires: \"soon\" is not an RFC 3339 UTC time"),
        ("  - { name: a, sha256: Z, models: [] }\n", "keys[0].models: is empty"),
        ("  - { name: a, sha256: Z, colour: red }\n", "keys[0].colour: unknown key"),
        ("  - { name: a, sha256: Z, labels: { a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9 } }\n", "keys[0].labels: 9 labels; a key may have at most 8"),
    ];
    for (keys, expected) in cases {
        let all = errors(&with_keys(keys), &[("K", "x")]);
        assert!(
            all.iter().any(|e| e.starts_with(expected)),
            "{keys}: expected {expected:?} in {all:#?}"
        );
    }
    let long = "v".repeat(65);
    let all = errors(
        &with_keys(&format!(
            "  - {{ name: a, sha256: {ZEROS}, labels: {{ team: {long} }} }}\n"
        )),
        &[],
    );
    assert!(
        all.iter()
            .any(|e| e.contains("keys[0].labels.team: is 65 bytes")),
        "{all:?}"
    );
}

#[test]
fn key_names_and_keys_are_unique_across_both_lists() {
    let yaml = format!(
        "{}  - {{ name: a, sha256: {ZEROS} }}\n  - {{ name: b, key: \"${{FLAT}}\" }}\nserver:\n  auth:\n    keys: [\"${{FLAT}}\"]\n",
        with_keys(&format!("  - {{ name: a, sha256: \"{}\" }}\n", "1".repeat(64)))
    );
    let all = errors(&yaml, &[("FLAT", "sk-flat")]);
    assert!(
        all.iter()
            .any(|e| e.starts_with("keys[1].name: the name \"a\" is already used at keys[0]")),
        "{all:#?}"
    );
    assert!(
        all.iter()
            .any(|e| e.starts_with("keys[2]: this key is the same key as server.auth.keys[0]")),
        "{all:#?}"
    );
}

#[test]
fn a_models_pattern_that_matches_nothing_is_a_warning() {
    let loaded = load(
        &with_keys(&format!(
            "  - {{ name: a, sha256: {ZEROS}, models: [gtp-*] }}\n"
        )),
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        loaded.warnings.iter().any(|w| w
            .to_string()
            .starts_with("keys[0].models[0]: \"gtp-*\" matches no model")),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn target_and_model_rates_compile_onto_each_target() {
    let loaded = load(
        "upstreams:\n  u:\n    provider: mock\nmodels:\n  m:\n    rpm: 10\n    tpm: 1000\n    targets:\n      - { upstream: u, model: a, rpm: 3 }\n      - { upstream: u, model: b }\n",
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let m = loaded.table.model("m").unwrap();
    let rates: Vec<_> = m
        .targets
        .iter()
        .map(|t| (t.rates.rpm, t.rates.tpm))
        .collect();
    assert_eq!(rates, [(Some(3), Some(1000)), (Some(10), Some(1000))]);
}
