//! berth: a docker-compatible command-line client for berthd (or any Docker Engine API).
//!
//! Global flags as docker's (`-H`, `--config`, `-D`, `-l`, `--tls`, `--tlsverify`,
//! `--tlscacert`, `--tlscert`, `--tlskey`); the host comes from `-H`, then `BERTH_HOST`, then
//! `DOCKER_HOST`, then `unix:///run/berth/berth.sock`; TLS options also from
//! `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH` (see `berth_api::tls`). Each command group
//! lives in `commands/`; daemon errors print as `Error response from daemon: ...`.

#![recursion_limit = "256"]

mod commands;
mod output;

use clap::{CommandFactory, Parser, Subcommand};
use commands::{build, containers, images, network, prune, registry, system, volume};

/// The CLI.
#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "A self-sufficient runtime for containers",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Daemon socket to connect to.
    #[arg(short = 'H', long = "host")]
    pub host: Option<String>,
    /// Location of client config files.
    #[arg(long)]
    pub config: Option<String>,
    /// Enable debug mode.
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// Set the logging level.
    #[arg(short = 'l', long = "log-level")]
    pub log_level: Option<String>,
    /// Use TLS; implied by --tlsverify.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub tls: Option<bool>,
    /// Use TLS and verify the remote.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub tlsverify: Option<bool>,
    /// Trust certs signed only by this CA [default: ~/.docker/ca.pem].
    #[arg(long)]
    pub tlscacert: Option<std::path::PathBuf>,
    /// Path to TLS certificate file [default: ~/.docker/cert.pem].
    #[arg(long)]
    pub tlscert: Option<std::path::PathBuf>,
    /// Path to TLS key file [default: ~/.docker/key.pem].
    #[arg(long)]
    pub tlskey: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Show the berth version information.
    Version(system::VersionArgs),
    /// Display system-wide information.
    Info(system::InfoArgs),
    /// Get real time events from the server.
    Events(system::EventsArgs),
    /// Generate a shell completion script.
    Completion {
        /// bash, zsh or fish.
        shell: clap_complete::Shell,
    },
    /// List images.
    Images(images::ImagesArgs),
    /// Manage images.
    #[command(subcommand)]
    Image(images::ImageCmd),
    /// Import the contents from a tarball to create a filesystem image.
    Import(images::ImportArgs),
    /// Load an image from a tar archive or STDIN.
    Load(images::LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default).
    Save(images::SaveArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(images::TagArgs),
    /// Remove one or more images.
    Rmi(images::RmiArgs),
    /// Show the history of an image.
    History(images::HistoryArgs),
    /// Download an image from a registry.
    Pull(registry::PullArgs),
    /// Upload an image to a registry.
    Push(registry::PushArgs),
    /// Log in to a registry.
    Login(registry::LoginArgs),
    /// Log out from a registry.
    Logout(registry::LogoutArgs),
    /// Create and run a new container from an image.
    Run(containers::RunArgs),
    /// Create a new container.
    Create(containers::RunArgs),
    /// Start one or more stopped containers.
    Start(containers::StartArgs),
    /// List containers.
    Ps(containers::PsArgs),
    /// Stop one or more running containers.
    Stop(containers::StopArgs),
    /// Restart one or more containers.
    Restart(containers::StopArgs),
    /// Kill one or more running containers.
    Kill(containers::KillArgs),
    /// Remove one or more containers.
    Rm(containers::RmArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(containers::IdsArgs),
    /// Pause all processes within one or more containers.
    Pause(containers::IdsArgs),
    /// Unpause all processes within one or more containers.
    Unpause(containers::IdsArgs),
    /// Fetch the logs of a container.
    Logs(containers::LogsArgs),
    /// Return low-level information on berth objects.
    Inspect(containers::InspectArgs),
    /// Execute a command in a running container.
    Exec(containers::ExecArgs),
    /// Display the running processes of a container.
    Top(containers::TopArgs),
    /// Rename a container.
    Rename(containers::RenameArgs),
    /// Inspect changes to files or directories on a container's filesystem.
    Diff(containers::OneArgs),
    /// Export a container's filesystem as a tar archive.
    Export(containers::ExportArgs),
    /// Create a new image from a container's changes.
    Commit(containers::CommitArgs),
    /// List port mappings of a container.
    Port(containers::OneArgs),
    /// Attach local standard input, output, and error streams to a running container.
    Attach(containers::AttachArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(containers::CpArgs),
    /// Update configuration of one or more containers.
    Update(containers::UpdateArgs),
    /// Build an image from a Dockerfile.
    Build(build::BuildArgs),
    /// Manage containers.
    #[command(subcommand)]
    Container(containers::ContainerCmd),
    /// Manage berth.
    #[command(subcommand)]
    System(system::SystemCmd),
    /// Manage networks.
    #[command(subcommand)]
    Network(network::NetworkCmd),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(volume::VolumeCmd),
    /// Manage builds.
    #[command(subcommand)]
    Builder(prune::BuilderCmd),
}

fn main() {
    // SAFETY: restoring the default SIGPIPE disposition before any thread exists, so
    // `berth images | head` ends quietly like other command-line tools.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout and succeed; a missing argument exits 1 and other
            // usage errors exit 125, like docker.
            let code = match e.kind() {
                _ if !e.use_stderr() => 0,
                clap::error::ErrorKind::MissingRequiredArgument => 1,
                _ => 125,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let mut client = berth_api::Client::from_env(cli.host.as_deref());
    let tls = berth_api::TlsOptions::from_flags(
        cli.tls,
        cli.tlsverify,
        cli.tlscacert.clone(),
        cli.tlscert.clone(),
        cli.tlskey.clone(),
    );
    // TLS is for TCP hosts; a unix socket ignores it.
    if let Some(opts) = tls.filter(|_| !client.host().starts_with("unix://")) {
        client = match client.with_tls(&opts) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        };
    }
    let code = match run(cli, &mut client) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e:#}");
            1
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli, c: &mut berth_api::Client) -> anyhow::Result<i32> {
    match cli.cmd {
        Cmd::Version(a) => system::version(c, a),
        Cmd::Info(a) => system::info(c, a),
        Cmd::Events(a) => system::events(c, a),
        Cmd::Completion { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "berth", &mut std::io::stdout());
            Ok(0)
        }
        Cmd::System(s) => system::system(c, s),
        Cmd::Images(a) => images::images(c, a),
        Cmd::Image(i) => images::image(c, i),
        Cmd::Import(a) => images::import(c, a),
        Cmd::Load(a) => images::load(c, a),
        Cmd::Save(a) => images::save(c, a),
        Cmd::Tag(a) => images::tag(c, a),
        Cmd::Rmi(a) => images::rmi(c, a),
        Cmd::History(a) => images::history(c, a),
        Cmd::Pull(a) => registry::pull(c, a, cli.config.as_deref()),
        Cmd::Push(a) => registry::push(c, a, cli.config.as_deref()),
        Cmd::Login(a) => registry::login(c, a, cli.config.as_deref()),
        Cmd::Logout(a) => registry::logout(a, cli.config.as_deref()),
        Cmd::Run(a) => containers::run(c, a, true, cli.config.as_deref()),
        Cmd::Create(a) => containers::run(c, a, false, cli.config.as_deref()),
        Cmd::Start(a) => containers::start(c, a),
        Cmd::Ps(a) => containers::ps(c, a),
        Cmd::Stop(a) => containers::stop(c, a, false),
        Cmd::Restart(a) => containers::stop(c, a, true),
        Cmd::Kill(a) => containers::kill(c, a),
        Cmd::Rm(a) => containers::rm(c, a),
        Cmd::Wait(a) => containers::wait(c, a),
        Cmd::Pause(a) => containers::simple(c, a, "pause"),
        Cmd::Unpause(a) => containers::simple(c, a, "unpause"),
        Cmd::Logs(a) => containers::logs(c, a),
        Cmd::Inspect(a) => containers::inspect(c, a),
        Cmd::Exec(a) => containers::exec(c, a),
        Cmd::Top(a) => containers::top(c, a),
        Cmd::Rename(a) => containers::rename(c, a),
        Cmd::Diff(a) => containers::diff(c, a),
        Cmd::Export(a) => containers::export(c, a),
        Cmd::Commit(a) => containers::commit(c, a),
        Cmd::Port(a) => containers::port(c, a),
        Cmd::Attach(a) => containers::attach(c, a),
        Cmd::Cp(a) => containers::cp(c, a),
        Cmd::Update(a) => containers::update(c, a),
        Cmd::Build(a) => build::build(c, a),
        Cmd::Container(cc) => containers::container(c, cc, cli.config.as_deref()),
        Cmd::Network(n) => network::network(c, n),
        Cmd::Volume(v) => volume::volume(c, v),
        Cmd::Builder(b) => prune::builder(c, b),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
