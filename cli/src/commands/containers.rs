//! Container commands: the flags of run, create, start, ps, stop, restart, kill, rm, wait,
//! pause, unpause, logs, inspect, exec, top, rename, diff, export, commit, port, attach and
//! the `container ...` group. The commands live in `containers_run` (lifecycle),
//! `containers_list` (ps, inspect), `containers_io` (logs, exec, attach), `containers_cp` (cp),
//! `containers_update` (update) and `state`.

pub use super::containers_cp::{cp, CpArgs};
pub use super::containers_io::{attach, exec, logs};
pub use super::containers_list::{inspect, ps};
pub use super::containers_run::{kill, rm, run, simple, start, stop, wait};
pub use super::containers_update::{update, UpdateArgs};
pub use super::create::RunArgs;
pub use super::state::{commit, diff, export, port, rename, top};
use anyhow::Result;
use berth_api::Client;
use clap::{Args, Subcommand};

/// `start` flags.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// Attach STDOUT/STDERR and forward signals.
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN.
    #[arg(short, long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long)]
    pub detach_keys: Option<String>,
}

/// `ps` flags.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Display total file sizes.
    #[arg(short, long)]
    pub size: bool,
    /// Show n last created containers.
    #[arg(short = 'n', long)]
    pub last: Option<i64>,
    /// Show the latest created container.
    #[arg(short, long)]
    pub latest: bool,
    /// Filter output based on conditions provided.
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output using a Go template.
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
}

/// `stop` / `restart` flags.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// Seconds to wait before killing the container.
    #[arg(short = 't', long = "time", alias = "timeout")]
    pub time: Option<i64>,
    /// Signal to send to the container.
    #[arg(short, long)]
    pub signal: Option<String>,
}

/// `kill` flags.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// Signal to send to the container.
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
}

/// `rm` flags.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// Force the removal of a running container (uses SIGKILL).
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container.
    #[arg(short, long)]
    pub volumes: bool,
    /// Remove the specified link.
    #[arg(short, long)]
    pub link: bool,
}

/// Containers only.
#[derive(Debug, Args)]
pub struct IdsArgs {
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `attach` flags.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container.
    #[arg(long)]
    pub detach_keys: Option<String>,
    /// Do not attach STDIN.
    #[arg(long)]
    pub no_stdin: bool,
    /// Container.
    pub container: String,
}

/// One container.
#[derive(Debug, Args)]
pub struct OneArgs {
    /// Container.
    pub container: String,
}

/// `logs` flags.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Container.
    pub container: String,
    /// Follow log output.
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs.
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show logs since timestamp.
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp.
    #[arg(long)]
    pub until: Option<String>,
    /// Show timestamps.
    #[arg(short, long)]
    pub timestamps: bool,
}

/// `inspect` flags.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Objects.
    #[arg(required = true)]
    pub objects: Vec<String>,
    /// Format output using a Go template.
    #[arg(short, long)]
    pub format: Option<String>,
}

/// `exec` flags.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Detached mode.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Working directory.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Give extended privileges to the command.
    #[arg(long)]
    pub privileged: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long)]
    pub detach_keys: Option<String>,
    /// Container.
    pub container: String,
    /// Command.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

/// `top` args.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// Container.
    pub container: String,
    /// ps options.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// `rename` args.
#[derive(Debug, Args)]
pub struct RenameArgs {
    /// Container.
    pub container: String,
    /// New name.
    pub new_name: String,
}

/// `export` flags.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Container.
    pub container: String,
    /// Write to a file, instead of STDOUT.
    #[arg(short, long)]
    pub output: Option<String>,
}

/// `commit` flags.
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Container.
    pub container: String,
    /// Repository[:tag].
    pub reference: Option<String>,
    /// Apply Dockerfile instruction to the created image.
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Commit message.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Author.
    #[arg(short, long)]
    pub author: Option<String>,
    /// Pause container during commit.
    #[arg(short, long, default_value_t = true)]
    pub pause: bool,
}

/// `container` subcommands.
#[derive(Debug, Subcommand)]
pub enum ContainerCmd {
    /// List containers.
    #[command(alias = "list")]
    Ls(PsArgs),
    /// Remove all stopped containers.
    Prune(super::prune::PruneArgs),
    /// Run a command in a new container.
    Run(RunArgs),
    /// Create a new container.
    Create(RunArgs),
    /// Remove one or more containers.
    Rm(RmArgs),
    /// Display detailed information on one or more containers.
    Inspect(InspectArgs),
    /// Stop one or more running containers.
    Stop(StopArgs),
    /// Start one or more stopped containers.
    Start(StartArgs),
    /// Fetch the logs of a container.
    Logs(LogsArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(CpArgs),
    /// Update configuration of one or more containers.
    Update(UpdateArgs),
}

/// `berth container ...`.
pub fn container(c: &mut Client, cmd: ContainerCmd, dir: Option<&str>) -> Result<i32> {
    match cmd {
        ContainerCmd::Ls(a) => ps(c, a),
        ContainerCmd::Prune(a) => super::prune::one(c, super::prune::Area::Containers, false, &a),
        ContainerCmd::Run(a) => run(c, a, true, dir),
        ContainerCmd::Create(a) => run(c, a, false, dir),
        ContainerCmd::Rm(a) => rm(c, a),
        ContainerCmd::Inspect(a) => inspect(c, a),
        ContainerCmd::Stop(a) => stop(c, a, false),
        ContainerCmd::Start(a) => start(c, a),
        ContainerCmd::Logs(a) => logs(c, a),
        ContainerCmd::Cp(a) => cp(c, a),
        ContainerCmd::Update(a) => update(c, a),
    }
}
