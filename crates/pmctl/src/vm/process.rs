//! pmvm processes: pidfiles, liveness, finding and spawning the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::error::VmError;

/// The pid in `pidfile`, if it holds one.
pub fn read_pid(pidfile: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(pidfile).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    (pid > 0 && pid <= i32::MAX as u32).then_some(pid)
}

/// Whether process `pid` exists (signal 0; EPERM means it exists but is not ours).
pub fn alive(pid: u32) -> bool {
    let Ok(p) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if p <= 0 {
        return false;
    }
    // A zombie still answers kill(0); treat it as gone.
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        && let Some(rest) = stat.rsplit_once(')').map(|x| x.1)
        && rest.trim_start().starts_with('Z')
    {
        return false;
    }
    // SAFETY: kill with signal 0 sends nothing; it only checks the pid.
    let r = unsafe { libc::kill(p, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The running pid from `pidfile`, if the process is alive.
pub fn running_pid(pidfile: &Path) -> Option<u32> {
    read_pid(pidfile).filter(|&p| alive(p))
}

/// Send `sig` to `pid`.
pub fn signal(pid: u32, sig: libc::c_int) -> std::io::Result<()> {
    let p =
        libc::pid_t::try_from(pid).map_err(|_| std::io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: plain kill(2) on a pid we read from our own pidfile.
    if unsafe { libc::kill(p, sig) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The pmvm binary: `explicit` (--pmvm), else env `PMVM`, else `pmvm` next to
/// the running pmctl, else the first `pmvm` in `PATH`.
pub fn find_pmvm(explicit: Option<&Path>) -> Result<PathBuf, VmError> {
    if let Some(p) = explicit {
        return if executable(p) {
            Ok(p.to_owned())
        } else {
            Err(VmError::Invalid(format!(
                "--pmvm {}: not an executable file",
                p.display()
            )))
        };
    }
    if let Some(p) = std::env::var_os("PMVM").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        return if executable(&p) {
            Ok(p)
        } else {
            Err(VmError::Invalid(format!(
                "PMVM={}: not an executable file",
                p.display()
            )))
        };
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_owned))
    {
        let p = dir.join("pmvm");
        if executable(&p) {
            return Ok(p);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let p = d.join("pmvm");
            if executable(&p) {
                return Ok(p);
            }
        }
    }
    Err(VmError::NoPmvm)
}

/// Run `pmvm argv` (which daemonizes) and wait for the foreground process.
/// On failure, the error carries what pmvm printed. pmvm's daemon closes
/// its inherited stdio, so waiting for the pipe's end is safe.
pub fn spawn_daemon(name: &str, pmvm: &Path, argv: &[String]) -> Result<(), VmError> {
    let out = Command::new(pmvm)
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| VmError::io("cannot run", pmvm, e))?;
    if out.status.success() {
        return Ok(());
    }
    let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if stderr.len() > 4096 {
        let cut = (0..=4096)
            .rev()
            .find(|&i| stderr.is_char_boundary(i))
            .unwrap_or(0);
        stderr.truncate(cut);
    }
    Err(VmError::StartFailed {
        name: name.to_owned(),
        status: out.status.to_string(),
        stderr,
    })
}
