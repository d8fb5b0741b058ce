//! The server's CPU time and resident memory, read from `/proc/PID/…`.

use std::time::Instant;

/// One reading of a process.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    /// When it was read.
    pub at: Instant,
    /// User + system CPU time, in seconds.
    pub cpu_s: f64,
    /// Resident set size, in KiB.
    pub rss_kib: u64,
    /// Threads of the process.
    pub threads: u64,
}

/// Reads `/proc/PID/stat` and `/proc/PID/status`; `None` when the process is gone (or
/// this is not Linux).
pub fn sample(pid: u32) -> Option<ProcSample> {
    let at = Instant::now();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after `) `.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Some(ProcSample {
        at,
        cpu_s: (utime + stime) / clock_ticks(),
        rss_kib: field("VmRSS:"),
        threads: field("Threads:"),
    })
}

/// Anonymous memory of the process (the heap and thread stacks, not mapped files), in
/// KiB, from `/proc/PID/smaps_rollup`; `None` when it cannot be read.
pub fn anonymous_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Anonymous:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Clock ticks per second as `/proc` counts them (`USER_HZ`, 100 on every Linux we
/// run on; `getconf CLK_TCK` would need libc).
fn clock_ticks() -> f64 {
    100.0
}

/// Waits until the process has used less than `busy_percent` of a core over half a
/// second (the previous scenario's backlog drained), at most `limit`. Returns how long it
/// waited.
pub async fn wait_quiet(
    pid: u32,
    busy_percent: f64,
    limit: std::time::Duration,
) -> std::time::Duration {
    let start = Instant::now();
    let Some(mut last) = sample(pid) else {
        return start.elapsed();
    };
    while start.elapsed() < limit {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let Some(now) = sample(pid) else { break };
        if cpu_percent(&last, &now) < busy_percent {
            break;
        }
        last = now;
    }
    start.elapsed()
}

/// CPU use between two samples, in percent of one core.
pub fn cpu_percent(from: &ProcSample, to: &ProcSample) -> f64 {
    let wall = to.at.duration_since(from.at).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    (to.cpu_s - from.cpu_s) / wall * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_can_be_read() {
        let s = sample(std::process::id()).expect("own /proc entry");
        assert!(s.rss_kib > 0);
        assert!(s.cpu_s >= 0.0);
        let anon = anonymous_kib(std::process::id()).expect("own smaps_rollup");
        assert!(anon > 0, "{anon} KiB");
    }
}
