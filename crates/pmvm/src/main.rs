//! `pmvm`: boots a Linux guest under KVM with virtual NVDIMMs, from a QEMU-style command line.

use std::process::ExitCode;

use vm_config::{Action, parse_args};

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PMVM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    init_logging();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match parse_args(&argv) {
        Ok(Action::Help) => {
            print!("{}", vm_config::HELP);
            return ExitCode::SUCCESS;
        }
        Ok(Action::Version) => {
            println!(
                "pmvm version {} (QEMU-compatible command line)",
                env!("CARGO_PKG_VERSION")
            );
            return ExitCode::SUCCESS;
        }
        Ok(Action::Run(cfg)) => cfg,
        Err(e) => {
            eprintln!("pmvm: {e}");
            return ExitCode::from(1);
        }
    };
    if cfg.daemonize {
        let stdio = cfg.serial == vm_config::SerialConfig::Stdio
            || cfg.monitor.iter().chain(&cfg.qmp).any(|c| c.0 == "stdio");
        if stdio {
            eprintln!(
                "pmvm: -daemonize cannot be used with stdio (the serial console or a monitor); use -serial file:PATH or -serial none"
            );
            return ExitCode::from(1);
        }
        // SAFETY: daemon() forks before any thread is started; the child continues alone.
        if unsafe { libc::daemon(1, 0) } != 0 {
            eprintln!("pmvm: -daemonize: {}", std::io::Error::last_os_error());
            return ExitCode::from(1);
        }
    }
    if let Some(p) = &cfg.pidfile
        && let Err(e) = std::fs::write(p, format!("{}\n", std::process::id()))
    {
        eprintln!("pmvm: -pidfile {}: {e}", p.display());
        return ExitCode::from(1);
    }
    let status = match vmm::run_vm(&cfg) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("pmvm: {e}");
            ExitCode::from(1)
        }
    };
    if let Some(p) = &cfg.pidfile {
        let _ = std::fs::remove_file(p);
    }
    status
}
