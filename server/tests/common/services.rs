//! The outside services tests run the server with (nginx now; PostgreSQL
//! and S3 later): each started on 127.0.0.1 on a port of its own, from a
//! temporary directory, as a child of the test, and stopped by its pid when
//! dropped. `cargo xtask test` installs the Debian packages they come from.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free port on 127.0.0.1 (free when asked; the service binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// nginx as a reverse proxy on `127.0.0.1:port` in front of one or more
/// upstreams on 127.0.0.1, as an operator would set it up: the Host passed
/// through, the client's address appended to X-Forwarded-For.
pub struct Nginx {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

pub const NGINX: &str = "/usr/sbin/nginx";

impl Nginx {
    pub fn start(port: u16, upstream: u16) -> Self {
        Self::balancing(port, &[upstream], "", "")
    }

    /// nginx on `127.0.0.1:port` balancing `upstreams` (each a
    /// `server 127.0.0.1:port {server_options};`), with `location`'s
    /// directives added to the proxying ones.
    pub fn balancing(port: u16, upstreams: &[u16], server_options: &str, location: &str) -> Self {
        assert!(Path::new(NGINX).exists(), "{NGINX} is missing: `cargo xtask test` installs Debian's nginx");
        let dir = tempfile::tempdir().unwrap();
        // The worker may run as another user: it must reach its temp paths.
        #[cfg(unix)]
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let d = dir.path().display();
        let servers: String = upstreams.iter().map(|p| format!("server 127.0.0.1:{p} {server_options}; ")).collect();
        let conf = format!(
            "daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 2048; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream chartkey {{ {servers}}}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://chartkey;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_buffering off;
            {location}
        }}
    }}
}}
"
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nginx");
        let nginx = Self { port, child, _dir: dir };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(10), "nginx did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }
}

impl Drop for Nginx {
    /// SIGTERM to the master (a SIGKILL would leave its worker behind,
    /// still listening), then SIGKILL if it has not gone within 5 s.
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
