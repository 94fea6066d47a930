//! Registry commands: pull, push, login, logout; credentials in `~/.docker/config.json`.

use anyhow::Result;
use base64::Engine as _;
use berth_api::client::enc;
use berth_api::Client;
use clap::Args;
use serde_json::{json, Value};
use std::io::{IsTerminal, Read};
use std::path::PathBuf;

/// `pull` flags.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Image.
    pub image: String,
    /// Suppress verbose output.
    #[arg(short, long)]
    pub quiet: bool,
    /// Set platform if server is multi-platform capable.
    #[arg(long)]
    pub platform: Option<String>,
}

/// `push` flags.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Image.
    pub image: String,
    /// Suppress verbose output.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `login` flags.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Server.
    pub server: Option<String>,
    /// Username.
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password.
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `logout` args.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Server.
    pub server: Option<String>,
}

const HUB: &str = "https://index.docker.io/v1/";

fn config_path(dir: Option<&str>) -> PathBuf {
    let d = dir
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("DOCKER_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".docker")
        });
    d.join("config.json")
}

fn read_config(dir: Option<&str>) -> Value {
    std::fs::read(config_path(dir))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| json!({}))
}

fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_string()
        }
        _ => HUB.to_string(),
    }
}

/// The `X-Registry-Auth` header value for `image`.
pub fn auth_header(image: &str, dir: Option<&str>) -> String {
    let server = registry_of(image);
    let cfg = read_config(dir);
    let entry = cfg["auths"][&server].clone();
    let v = match entry["auth"]
        .as_str()
        .and_then(|a| base64::engine::general_purpose::STANDARD.decode(a).ok())
    {
        Some(raw) => {
            let s = String::from_utf8_lossy(&raw).into_owned();
            let (u, p) = s.split_once(':').unwrap_or((&s, ""));
            json!({"username": u, "password": p, "serveraddress": server})
        }
        None => json!({}),
    };
    base64::engine::general_purpose::URL_SAFE.encode(v.to_string())
}

fn normalized(image: &str) -> (String, String) {
    let (name, tag) = match image.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n.to_string(), t.to_string()),
        _ => (image.to_string(), "latest".to_string()),
    };
    let full = if registry_of(&name) == HUB {
        if name.contains('/') {
            format!("docker.io/{name}")
        } else {
            format!("docker.io/library/{name}")
        }
    } else {
        name
    };
    (full, tag)
}

/// Shows a progress stream like docker (plain lines); returns 1 on an in-band error.
pub fn progress(r: berth_api::Response, quiet: bool) -> Result<i32> {
    let mut code = 0;
    r.messages(|v| {
        if let Some(e) = v["error"].as_str() {
            eprintln!("{e}");
            code = 1;
            return Ok(());
        }
        if quiet {
            return Ok(());
        }
        let status = v["status"].as_str().unwrap_or("");
        if status == "Downloading" || status == "Pushing" {
            return Ok(());
        }
        match v["id"].as_str() {
            Some(id) if !id.is_empty() => println!("{id}: {status}"),
            _ if !status.is_empty() => println!("{status}"),
            _ => {}
        }
        Ok(())
    })?;
    Ok(code)
}

/// Pulls `image` (used by `pull` and by `run` when the image is missing).
pub fn pull_image(
    c: &mut Client,
    image: &str,
    platform: Option<&str>,
    quiet: bool,
    dir: Option<&str>,
) -> Result<i32> {
    let (name, tag) = normalized(image);
    let mut q = format!("/images/create?fromImage={}&tag={}", enc(&name), enc(&tag));
    if let Some(p) = platform {
        q.push_str(&format!("&platform={}", enc(p)));
    }
    let auth = auth_header(image, dir);
    let r = c.request("POST", &q, &[("X-Registry-Auth", &auth)], None)?;
    let code = progress(r, quiet)?;
    if code == 0 {
        let shown = if registry_of(image) == HUB
            && !name.trim_start_matches("docker.io/library/").contains('/')
        {
            format!(
                "docker.io/library/{}:{tag}",
                name.trim_start_matches("docker.io/library/")
            )
        } else {
            format!("{name}:{tag}")
        };
        println!("{shown}");
    }
    Ok(code)
}

/// `berth pull`.
pub fn pull(c: &mut Client, a: PullArgs, dir: Option<&str>) -> Result<i32> {
    pull_image(c, &a.image, a.platform.as_deref(), a.quiet, dir)
}

/// `berth push`.
pub fn push(c: &mut Client, a: PushArgs, dir: Option<&str>) -> Result<i32> {
    let (name, tag) = match a.image.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n.to_string(), t.to_string()),
        _ => (a.image.clone(), "latest".to_string()),
    };
    let auth = auth_header(&a.image, dir);
    let r = c.request(
        "POST",
        &format!("/images/{name}/push?tag={}", enc(&tag)),
        &[("X-Registry-Auth", &auth)],
        None,
    )?;
    progress(r, a.quiet)
}

/// `berth login`.
pub fn login(c: &mut Client, a: LoginArgs, dir: Option<&str>) -> Result<i32> {
    let server = a.server.clone().unwrap_or_else(|| HUB.to_string());
    let user = a.username.clone().unwrap_or_default();
    let pass = if a.password_stdin {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = a.password.clone() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p
    } else {
        if !std::io::stdin().is_terminal() {
            anyhow::bail!("Error: Cannot perform an interactive login from a non TTY device");
        }
        let mut s = String::new();
        eprint!("Password: ");
        std::io::stdin().read_line(&mut s)?;
        s.trim_end().to_string()
    };
    c.json(
        "POST",
        "/auth",
        &json!({"username": user, "password": pass, "serveraddress": server}),
    )?;
    let path = config_path(dir);
    let mut cfg = read_config(dir);
    cfg["auths"][&server] =
        json!({"auth": base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))});
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p)?;
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&cfg)?)?;
    println!("Login Succeeded");
    Ok(0)
}

/// `berth logout`.
pub fn logout(a: LogoutArgs, dir: Option<&str>) -> Result<i32> {
    let server = a.server.unwrap_or_else(|| HUB.to_string());
    let mut cfg = read_config(dir);
    if let Some(m) = cfg["auths"].as_object_mut() {
        m.remove(&server);
    }
    std::fs::write(config_path(dir), serde_json::to_vec_pretty(&cfg)?)?;
    println!("Removing login credentials for {server}");
    Ok(0)
}
