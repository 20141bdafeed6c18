//! `amber-jepsen`: run the Jepsen-style workloads against `amber`, or check
//! a recorded history again.
//!
//! ```text
//! amber-jepsen run --workload all --duration-s 60 --faults kill,pause,cut
//! amber-jepsen stability --duration-s 300
//! amber-jepsen check --model list-append target/jepsen/.../history.jsonl
//! ```

use amber_jepsen::checker::{self, Model};
use amber_jepsen::run::{self, Fault, RunConfig, StabilityConfig};
use amber_jepsen::workload::Workload;
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    version,
    about = "Jepsen-style workloads, faults and checker for Amber"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run workloads with faults and check their histories.
    Run {
        #[command(flatten)]
        common: Common,
        /// Workloads to run, one after the other (`all` for every one).
        #[arg(long, value_delimiter = ',', default_value = "all")]
        workload: Vec<String>,
        /// Faults to inject: kill, pause, cut, or none.
        #[arg(long, value_delimiter = ',', default_value = "kill,pause,cut")]
        faults: Vec<String>,
    },
    /// The full fault matrix: every workload with no fault, each fault
    /// alone, and all faults together.
    Matrix {
        #[command(flatten)]
        common: Common,
    },
    /// A long fault-free run that fails if throughput or memory degrade.
    Stability {
        #[command(flatten)]
        common: Common,
        #[arg(long, value_enum, default_value = "list-append")]
        workload: Workload,
        /// Fail if a window's rate falls below this share of the rate of
        /// the first `--baseline-s` seconds.
        #[arg(long, default_value_t = 0.5)]
        min_ratio: f64,
        #[arg(long, default_value_t = 10)]
        baseline_s: usize,
        #[arg(long, default_value_t = 5)]
        window_s: usize,
        /// Fail if the server's resident memory exceeds this.
        #[arg(long)]
        rss_max_mib: Option<u64>,
    },
    /// Check a recorded history again.
    Check {
        #[arg(long, value_enum)]
        model: Model,
        history: PathBuf,
    },
}

#[derive(clap::Args)]
struct Common {
    /// Seconds each workload runs.
    #[arg(long, default_value_t = 60)]
    duration_s: u64,
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// At most this many transactions per workload, spread evenly over the
    /// duration (clients wait for their turn); unbounded if not given.
    #[arg(long)]
    txns_max: Option<u64>,
    /// The server binary (default: `amber` beside this program).
    #[arg(long)]
    amber: Option<PathBuf>,
    /// Directory for histories, verdicts and server logs.
    #[arg(long, default_value = "target/jepsen")]
    out: PathBuf,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

impl Common {
    fn config(&self, workload: Workload) -> Result<RunConfig> {
        let amber = match &self.amber {
            Some(p) => p.clone(),
            None => std::env::current_exe()?
                .parent()
                .context("no directory of this program")?
                .join("amber"),
        };
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        let out = self.out.join(format!("{}-{stamp}", workload.name()));
        let mut c = RunConfig::new(workload, amber, out);
        c.duration = Duration::from_secs(self.duration_s);
        c.clients = self.clients;
        c.txns_max = self.txns_max;
        c.seed = self.seed;
        Ok(c)
    }
}

fn workloads(names: &[String]) -> Result<Vec<Workload>> {
    use clap::ValueEnum;
    let mut out = Vec::new();
    for n in names {
        if n == "all" {
            out.extend(Workload::ALL);
        } else {
            out.push(Workload::from_str(n, true).map_err(|e| anyhow::anyhow!("{e}"))?);
        }
    }
    Ok(out)
}

fn parse_faults(names: &[String]) -> Result<Vec<Fault>> {
    use clap::ValueEnum;
    names
        .iter()
        .filter(|n| n.as_str() != "none" && !n.is_empty())
        .map(|n| Fault::from_str(n, true).map_err(|e| anyhow::anyhow!("{e}")))
        .collect()
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let passed = match cli.command {
        Command::Check { model, history } => {
            let h = amber_jepsen::history::read_history(&history)
                .with_context(|| format!("reading {}", history.display()))?;
            let report = checker::check(model, &h);
            print!("{}", report.render());
            report.valid()
        }
        Command::Run {
            common,
            workload,
            faults,
        } => {
            let mut all_passed = true;
            for w in workloads(&workload)? {
                let mut config = common.config(w)?;
                config.faults = parse_faults(&faults)?;
                let outcome = rt.block_on(run::run(config))?;
                println!("{}", outcome.summary());
                all_passed &= outcome.passed();
            }
            all_passed
        }
        Command::Matrix { common } => {
            let columns: [(&str, Vec<Fault>); 6] = [
                ("none", vec![]),
                ("kill", vec![Fault::Kill]),
                ("pause", vec![Fault::Pause]),
                ("cut", vec![Fault::Cut]),
                ("deploy", vec![Fault::Deploy]),
                (
                    "all",
                    vec![Fault::Kill, Fault::Pause, Fault::Cut, Fault::Deploy],
                ),
            ];
            let mut lines = Vec::new();
            let mut all_passed = true;
            for w in Workload::ALL {
                for (name, faults) in &columns {
                    let mut config = common.config(w)?;
                    config.out_dir = config.out_dir.with_file_name(format!(
                        "{}-{name}",
                        config
                            .out_dir
                            .file_name()
                            .and_then(|n| n.to_str())
                            .unwrap_or("run")
                    ));
                    config.faults = faults.clone();
                    let outcome = rt.block_on(run::run(config))?;
                    println!("{}", outcome.summary());
                    all_passed &= outcome.passed();
                    lines.push(format!("[faults: {name}] {}", outcome.summary()));
                }
            }
            println!("\nfault matrix:\n{}", lines.join("\n"));
            all_passed
        }
        Command::Stability {
            common,
            workload,
            min_ratio,
            baseline_s,
            window_s,
            rss_max_mib,
        } => {
            let mut config = common.config(workload)?;
            config.faults = vec![];
            config.heal = Duration::ZERO;
            config.verbose = true;
            config.stability = Some(StabilityConfig {
                baseline_s,
                window_s,
                min_ratio,
                rss_max_mib,
            });
            let outcome = rt.block_on(run::run(config))?;
            println!("{}", outcome.summary());
            outcome.passed()
        }
    };
    if !passed {
        std::process::exit(1);
    }
    Ok(())
}
