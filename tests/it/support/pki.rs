//! A private CA and a `localhost` / 127.0.0.1 server certificate, made by
//! the `openssl` command (installed by `.ci/run`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A CA and a `localhost` / 127.0.0.1 server certificate it signed.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
}

pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the `openssl` command (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes a CA named `name` and a server certificate from it in a new dir.
pub fn make_pki(name: &str) -> Pki {
    let dir = std::env::temp_dir().join(format!("switchyard-tls-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req", "-x509", "-days", "2", "-keyout", "ca.key", "-out", "ca.pem",
    ];
    ca.extend(ec);
    let subject = format!("/CN=switchyard test CA {name}");
    ca.extend(["-subj", &subject]);
    ca.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
    ca.extend(["-addext", "keyUsage=critical,keyCertSign"]);
    openssl(&dir, &ca);
    issue_server(&dir, "ca.pem", "ca.key");
    Pki { dir }
}

/// A server key and a `localhost` / 127.0.0.1 certificate signed by the CA
/// in `ca`/`ca_key` (paths relative to `dir`), as `server.key` and
/// `server.pem` in `dir`.
fn issue_server(dir: &Path, ca: &str, ca_key: &str) {
    openssl(
        dir,
        &[
            "req",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            ca,
            "-CAkey",
            ca_key,
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

/// A new server key and certificate signed by `pki`'s CA, in a new
/// directory inside it (`server.pem`, `server.key`).
pub fn reissue(pki: &Pki) -> PathBuf {
    let dir = pki.dir.join("reissued");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    issue_server(&dir, "../ca.pem", "../ca.key");
    dir
}

/// The private CA that upstream TLS tests trust, made once per process and
/// named in `SSL_CERT_FILE`.
///
/// The router reads `SSL_CERT_FILE` once per process, when it first connects
/// to an upstream over TLS, and every test module shares this process: so
/// any test that makes the router connect to an upstream over TLS calls this
/// first, whichever such test happens to run first.
pub fn trust_test_ca() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let pki = make_pki("trusted");
        std::env::set_var("SSL_CERT_FILE", pki.ca());
        pki
    })
}
