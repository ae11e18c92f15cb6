//! llama.cpp's `llama-server`, started by inferbench on a model, bound to
//! 127.0.0.1 on a free port, and stopped whatever happens: the process is
//! owned by a guard that kills it when dropped, so an error, a panic or
//! Ctrl-C leaves no server behind.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Where `--server llama-server` looks when no path is given, after `PATH`:
/// what `scripts/servers/install-llama-server` builds, below the current
/// directory or the checkout this binary was built in.
fn install_dirs() -> Vec<PathBuf> {
    let relative = Path::new(".cache/servers/llama-server/bin/llama-server");
    let mut dirs = vec![relative.to_path_buf()];
    if let Ok(exe) = std::env::current_exe() {
        // target/release/inferbench -> the checkout.
        if let Some(root) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
            dirs.push(root.join(relative));
        }
    }
    dirs
}

/// The llama-server binary: `path` when given, else from `PATH`, else the
/// one `install-llama-server` built.
pub fn find_binary(path: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = path {
        if !path.is_file() {
            bail!("--server llama-server={}: no such file", path.display());
        }
        return Ok(path.to_path_buf());
    }
    let in_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("llama-server"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    in_path
        .into_iter()
        .chain(install_dirs())
        .find(|p| p.is_file())
        .context(
            "--server llama-server: no llama-server in PATH or in .cache/servers/llama-server/bin \
             (build it with scripts/servers/install-llama-server, or give llama-server=PATH)",
        )
}

/// How to start the server.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    pub binary: PathBuf,
    pub model: PathBuf,
    pub threads: u32,
    /// Requests served at once (`-np`).
    pub slots: u32,
    /// Context per slot, in tokens.
    pub context_per_slot: u32,
    /// Layers on a GPU (`-ngl`; -1: all); 0 passes no flag.
    pub gpu_layers: i32,
    pub log: PathBuf,
    /// Longest wait for the server to answer `GET /v1/models`.
    pub ready_timeout: Duration,
}

/// A running llama-server, killed when dropped.
pub struct LlamaServer {
    child: Child,
    pub url: String,
    /// The command line it was started with.
    pub command: Vec<String>,
    pub log: PathBuf,
}

fn free_port() -> Result<u16> {
    // The port is free when asked; the server binds it a moment later. Another
    // process taking it in between makes the start fail, visibly.
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// The last lines of the server's log, for an error message.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// True when `GET /v1/models` on 127.0.0.1:port answers 200.
fn answers(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], port).into(),
        Duration::from_millis(500),
    ) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request =
        format!("GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

/// llama-server's `-ngl`: its "all" is any count above the model's layers
/// (its -1 means "automatic" in newer versions, not "all").
fn gpu_layers_flag(layers: i32) -> Vec<String> {
    match layers {
        0 => Vec::new(),
        n if n < 0 => vec!["-ngl".into(), "999".into()],
        n => vec!["-ngl".into(), n.to_string()],
    }
}

impl LlamaServer {
    pub fn start(options: &LaunchOptions) -> Result<LlamaServer> {
        let port = free_port()?;
        let context = options.slots.saturating_mul(options.context_per_slot);
        let args: Vec<String> = [
            "-m",
            &options.model.display().to_string(),
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "-t",
            &options.threads.to_string(),
            "-tb",
            &options.threads.to_string(),
            "-c",
            &context.to_string(),
            "-np",
            &options.slots.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(gpu_layers_flag(options.gpu_layers))
        .collect();
        let log = File::create(&options.log)
            .with_context(|| format!("creating the server log {}", options.log.display()))?;
        let child = Command::new(&options.binary)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", options.binary.display()))?;
        crate::interrupt::register_child(child.id());
        let mut command = vec![options.binary.display().to_string()];
        command.extend(args);
        let mut server = LlamaServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
            command,
            log: options.log.clone(),
        };
        server.wait_ready(port, options.ready_timeout)?;
        Ok(server)
    }

    fn wait_ready(&mut self, port: u16, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before it answered; last lines of {}:\n{}",
                    self.command[0],
                    self.log.display(),
                    log_tail(&self.log)
                );
            }
            if answers(port) {
                return Ok(());
            }
            if crate::interrupt::flag().load(std::sync::atomic::Ordering::Relaxed) {
                bail!(
                    "interrupted while waiting for {} to answer",
                    self.command[0]
                );
            }
            if start.elapsed() > timeout {
                bail!(
                    "{} did not answer on {} within {timeout:?}; last lines of {}:\n{}",
                    self.command[0],
                    self.url,
                    self.log.display(),
                    log_tail(&self.log)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        // SIGKILL, then reap it: nothing of the server outlives the run.
        let _ = self.child.kill();
        let _ = self.child.wait();
        crate::interrupt::forget_child(self.child.id());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_layers_become_llama_servers_flag() {
        assert!(gpu_layers_flag(0).is_empty(), "a CPU run passes nothing");
        assert_eq!(gpu_layers_flag(-1), ["-ngl", "999"]);
        assert_eq!(gpu_layers_flag(12), ["-ngl", "12"]);
    }
}
