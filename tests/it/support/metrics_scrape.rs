//! Reads a Prometheus text exposition (format 0.0.4) into samples, for
//! tests that check the numbers at `GET /metrics`.
//!
//! The parser is strict: a line it cannot read is an error (with the line),
//! so a malformed exposition fails the test instead of being skipped.

use std::collections::{BTreeMap, BTreeSet};

use super::client::get;

/// One sample line: `name{labels} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The sample name as written (`…_bucket`, `…_sum`, `…_count` included).
    pub name: String,
    /// Label names to (unescaped) values.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// The value of label `name`, if the sample has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }

    /// True when every `(name, value)` pair is among this sample's labels.
    pub fn matches(&self, labels: &[(&str, &str)]) -> bool {
        labels
            .iter()
            .all(|(name, value)| self.label(name) == Some(*value))
    }
}

/// A whole scrape.
#[derive(Clone, Debug, Default)]
pub struct Scrape {
    /// The text as served.
    pub text: String,
    /// The `Content-Type` it was served with (when fetched).
    pub content_type: Option<String>,
    /// Every sample, in order.
    pub samples: Vec<Sample>,
    /// `# TYPE` of each family.
    pub types: BTreeMap<String, String>,
    /// `# HELP` of each family.
    pub help: BTreeMap<String, String>,
}

impl Scrape {
    /// Parses `text`; `Err` names the first line that is not valid.
    pub fn parse(text: &str) -> Result<Scrape, String> {
        let mut scrape = Scrape {
            text: text.to_owned(),
            ..Scrape::default()
        };
        for (n, line) in text.lines().enumerate() {
            let at = |why: &str| format!("line {}: {why}: {line:?}", n + 1);
            let line = line.trim_start();
            if line.is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                let mut words = comment.trim_start().splitn(3, ' ');
                let (keyword, name) = match (words.next(), words.next()) {
                    (Some(keyword @ ("TYPE" | "HELP")), Some(name)) => (keyword, name),
                    _ => continue, // an ordinary comment
                };
                let text = words.next().unwrap_or("");
                let map = if keyword == "TYPE" {
                    let kind = text.trim();
                    if !matches!(
                        kind,
                        "counter" | "gauge" | "histogram" | "summary" | "untyped"
                    ) {
                        return Err(at("unknown TYPE"));
                    }
                    &mut scrape.types
                } else {
                    &mut scrape.help
                };
                if map
                    .insert(name.to_owned(), text.trim().to_owned())
                    .is_some()
                {
                    return Err(at(&format!("a second {keyword} for this name")));
                }
                continue;
            }
            scrape
                .samples
                .push(parse_sample(line).map_err(|why| at(&why))?);
        }
        Ok(scrape)
    }

    /// The sum of every sample named `name` whose labels include all of
    /// `labels` (other labels may have any value); 0.0 when none does.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.series(name, labels).map(|s| s.value).sum()
    }

    /// The samples named `name` whose labels include all of `labels`.
    pub fn series<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples
            .iter()
            .filter(move |s| s.name == name && s.matches(labels))
    }

    /// True when some sample is named `name` and has all of `labels`.
    pub fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.series(name, labels).next().is_some()
    }

    /// Every sample name that occurs.
    pub fn sample_names(&self) -> BTreeSet<&str> {
        self.samples.iter().map(|s| s.name.as_str()).collect()
    }

    /// Every label name used by samples named `name`.
    pub fn label_names(&self, name: &str) -> BTreeSet<&str> {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .flat_map(|s| s.labels.keys().map(String::as_str))
            .collect()
    }

    /// The family a sample name belongs to: `x` for `x_bucket`, `x_sum` and
    /// `x_count` when `x` is a histogram or summary; else the name itself.
    pub fn family_of<'a>(&self, name: &'a str) -> &'a str {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix) {
                if matches!(
                    self.types.get(base).map(String::as_str),
                    Some("histogram" | "summary")
                ) {
                    return base;
                }
            }
        }
        name
    }

    /// Checks the rules of the text format the samples must follow: every
    /// line (the last too) ends with `\n`; a family's TYPE comes before its
    /// first sample; a family's samples are one contiguous group; each
    /// histogram series has cumulative buckets ending in `le="+Inf"`, equal
    /// to its `_count`.
    pub fn check_well_formed(&self) -> Result<(), String> {
        if !self.text.is_empty() && !self.text.ends_with('\n') {
            return Err("the exposition does not end with a newline".into());
        }
        if self.text.contains('\r') {
            return Err("the exposition contains a carriage return".into());
        }
        // In text order: a family's TYPE before its first sample, and its
        // samples in one contiguous group.
        let mut typed: BTreeSet<&str> = BTreeSet::new();
        let mut finished: BTreeSet<&str> = BTreeSet::new();
        let mut current: Option<&str> = None;
        for line in self.text.lines() {
            if let Some(name) = line
                .strip_prefix("# TYPE ")
                .and_then(|t| t.split(' ').next())
            {
                typed.insert(name);
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let family = self.family_of(sample_name(line));
            if !typed.contains(family) {
                return Err(format!(
                    "a sample of {family} comes before its TYPE: {line:?}"
                ));
            }
            if current != Some(family) {
                if finished.contains(family) {
                    return Err(format!("the samples of {family} are not contiguous"));
                }
                if let Some(previous) = current {
                    finished.insert(previous);
                }
                current = Some(family);
            }
        }
        for (family, kind) in &self.types {
            if kind != "histogram" {
                continue;
            }
            let bucket = format!("{family}_bucket");
            let count = format!("{family}_count");
            // Group buckets by their labels without `le`.
            let mut groups: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
            for s in self.samples.iter().filter(|s| s.name == bucket) {
                let mut key = s.labels.clone();
                let le = key
                    .remove("le")
                    .ok_or_else(|| format!("{bucket} without le: {s:?}"))?;
                let le = parse_value(&le).map_err(|e| format!("{bucket}: le {le:?}: {e}"))?;
                groups.entry(key).or_default().push((le, s.value));
            }
            for (labels, buckets) in groups {
                let mut last = (f64::NEG_INFINITY, 0.0);
                for &(le, n) in &buckets {
                    if le <= last.0 || n < last.1 {
                        return Err(format!(
                            "{bucket}{labels:?}: buckets are not increasing and cumulative: {buckets:?}"
                        ));
                    }
                    last = (le, n);
                }
                if last.0 != f64::INFINITY {
                    return Err(format!("{bucket}{labels:?} has no le=\"+Inf\" bucket"));
                }
                let pairs: Vec<(&str, &str)> = labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let counted = self
                    .series(&count, &pairs)
                    .find(|s| s.labels == labels)
                    .map(|s| s.value);
                if counted != Some(last.1) {
                    return Err(format!(
                        "{count}{labels:?} is {counted:?}, but the +Inf bucket is {}",
                        last.1
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `GET {base}/metrics` (no credentials): checks for 200 and parses the body.
pub async fn scrape(base: &str) -> Scrape {
    let reply = get(&format!("{base}/metrics")).await;
    assert_eq!(
        reply.status,
        200,
        "GET /metrics answered {}: {}",
        reply.status,
        reply.text()
    );
    let text = reply.text();
    let mut scrape = Scrape::parse(&text)
        .unwrap_or_else(|e| panic!("GET /metrics is not valid Prometheus text: {e}\n{text}"));
    scrape.content_type = reply.header("content-type");
    scrape
}

/// The name at the start of a sample line.
fn sample_name(line: &str) -> &str {
    let end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    &line[..end]
}

fn is_name(name: &str, colons: bool) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colons && c == ':'));
    first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colons && c == ':'))
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text
            .parse::<f64>()
            .map_err(|e| format!("bad value {text:?}: {e}")),
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name = sample_name(line);
    if !is_name(name, true) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name.len()..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = after;
        loop {
            rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = rest.find('=').ok_or("a label without `=`")?;
            let label = rest[..eq].trim();
            if !is_name(label, false) {
                return Err(format!("bad label name {label:?}"));
            }
            rest = rest[eq + 1..]
                .trim_start()
                .strip_prefix('"')
                .ok_or("a label value without a quote")?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                match chars.next() {
                    None => return Err("an unterminated label value".into()),
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        other => return Err(format!("a bad escape {other:?}")),
                    },
                    Some((_, c)) => value.push(c),
                }
            };
            if labels.insert(label.to_owned(), value).is_some() {
                return Err(format!("label {label:?} appears twice"));
            }
            rest = rest[end + 1..].trim_start();
            if let Some(after) = rest.strip_prefix(',') {
                rest = after;
            } else if !rest.starts_with('}') {
                return Err("labels must be separated by `,`".into());
            }
        }
    }
    let mut words = rest.split_whitespace();
    let value = parse_value(words.next().ok_or("no value")?)?;
    if let Some(timestamp) = words.next() {
        timestamp
            .parse::<i64>()
            .map_err(|e| format!("bad timestamp {timestamp:?}: {e}"))?;
    }
    if words.next().is_some() {
        return Err("text after the value and timestamp".into());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}
