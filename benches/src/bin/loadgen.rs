//! The load generator. Run `loadgen help` for the usage; `benches/run.sh` runs every
//! scenario against every server.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use chat_benches::loadgen::cluster::Watched;
use chat_benches::loadgen::scenarios::{self, SoakOptions};
use chat_benches::loadgen::{self, report, Options, Outcome, Proto};

const USAGE: &str = "\
loadgen run KIND [--name NAME] [options]   KIND: idle | connstorm | fanout | slow | pingpong |
                                           storm | overload
loadgen soak [--minutes 10] [--storm 2000] [--period 60] [--settle 5] [options]
loadgen report --json FILE --out BENCHMARKS.md [--context FILE] [--appendix FILE]
loadgen cluster-table --json FILE   the fan-out rows with bus and CPU figures, as markdown

run options:
  --label L          name of the system under test in the report (default ours)
  --proto P          chat | socketio | pyws (default chat)
  --addr HOST:PORT   server address (default 127.0.0.1:4000; loopback only); fanout and
                     slow take several (repeated or comma-separated): member m of each
                     room connects to node m mod N, so each message crosses the bus
  --pid PID          server process, for CPU and RSS from /proc; with several --addr,
                     one per node in the same order (CPU of each over the window)
  --watch LABEL=PID  another process (the bus server) whose CPU over the window is
                     reported; repeatable
  --redis-info HOST:PORT     read this Redis's INFO commandstats at the window's edges
  --nats-monitor HOST:PORT   read this NATS monitoring port's /varz likewise
  --secret S         HS256 secret of our server (default bench-secret)
  --rooms R --members M       fan-out / slow / storm shape (default 10 × 50)
  --rate X           messages per second per sending member (default 1)
  --offered D        deliveries per second to offer (sets the rate)
  --duration S       measured seconds (default 10)   --warmup S (default 2)
  --connections N    idle connections (default 1000)
  --slow F           share of members that stop reading (slow; default 0.1)
  --round-trips K    ping-pong round trips (default 2000)
  --concurrency C    connections set up at once (default 128)
  --arrivals A       connstorm: new clients per second in the join storm (default
                     20000); the reconnect storm that follows brings them all at once
  --json FILE        append the outcome as a JSON line
  --admin-key K      the server's admin key: read its stats (overload, soak; fanout:
                     every node's messages and bus counters over the window)
  --dialect D        ws | grpc (default ws); grpc: ours, fanout only, one Connect
                     stream per member (point --addr at bench-server --grpc)
  --tls-ca FILE|any  connect over TLS (wss://, or gRPC over TLS as localhost) trusting
                     the CA in FILE, or (ws only) any certificate

overload (ours): --rooms R --members M clients offer sends open-loop, refusals not retried:
  --factor F         offer F × the sustainable rate (default 2)
  --sends-per-s X    offer X sends per second instead (no calibration)
  --calibrate S      seconds to measure the sustainable rate (default 5)
  --calibrate-clients C   closed-loop clients measuring it, one send in flight each;
                     at most the server's max_pending_appends (default 64)

soak (ours; needs --pid and --admin-key): --rooms R rooms, each with a sender at --rate
  msg/s and its share of --storm clients that drop and come back every --period seconds,
  for --minutes; the server's RSS and stats after each storm
";

/// Flags that may be given more than once (or once with comma-separated values).
const REPEATABLE: &[&str] = &["addr", "pid", "watch"];

fn parse_flags(args: &[String]) -> Result<HashMap<String, String>, String> {
    let mut flags = HashMap::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let key = a
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {a:?}"))?;
        let value = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
        if REPEATABLE.contains(&key) {
            // Repeated: the values joined with commas, as if given so.
            flags
                .entry(key.to_owned())
                .and_modify(|v: &mut String| {
                    v.push(',');
                    v.push_str(value);
                })
                .or_insert_with(|| value.clone());
        } else {
            flags.insert(key.to_owned(), value.clone());
        }
    }
    Ok(flags)
}

fn get<T: std::str::FromStr>(
    f: &HashMap<String, String>,
    key: &str,
    default: T,
) -> Result<T, String> {
    match f.get(key) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| format!("--{key}: cannot read {v:?}")),
    }
}

fn options(f: &HashMap<String, String>) -> Result<Options, String> {
    let d = Options::default();
    let secs = |k: &str, def: Duration| -> Result<Duration, String> {
        Ok(Duration::from_secs_f64(get(f, k, def.as_secs_f64())?))
    };
    let proto = match f.get("proto") {
        None => Proto::Chat,
        Some(p) => Proto::parse(p).ok_or_else(|| format!("--proto: unknown {p:?}"))?,
    };
    let addrs: Vec<String> = get(f, "addr", d.addr.clone())?
        .split(',')
        .map(str::to_owned)
        .collect();
    for addr in addrs
        .iter()
        .chain(f.get("redis-info"))
        .chain(f.get("nats-monitor"))
    {
        loopback(addr)?;
    }
    let pids: Vec<u32> = match f.get("pid") {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|p| p.parse().map_err(|_| format!("--pid: cannot read {p:?}")))
            .collect::<Result<_, _>>()?,
    };
    if pids.len() > 1 && pids.len() != addrs.len() {
        return Err("--pid: one per --addr (or only the first node's)".into());
    }
    let watch = match f.get("watch") {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|w| {
                let (label, pid) = w
                    .split_once('=')
                    .ok_or_else(|| format!("--watch {w:?}: LABEL=PID"))?;
                Ok(Watched {
                    label: label.to_owned(),
                    pid: pid
                        .parse()
                        .map_err(|_| format!("--watch {w:?}: LABEL=PID"))?,
                })
            })
            .collect::<Result<_, String>>()?,
    };
    Ok(Options {
        label: get(f, "label", d.label)?,
        proto,
        addr: addrs[0].clone(),
        addrs: if addrs.len() > 1 { addrs } else { Vec::new() },
        server_pid: pids.first().copied(),
        node_pids: if pids.len() > 1 { pids } else { Vec::new() },
        watch,
        redis_info: f.get("redis-info").cloned(),
        nats_monitor: f.get("nats-monitor").cloned(),
        secret: get(f, "secret", d.secret)?,
        rooms: get(f, "rooms", d.rooms)?,
        members: get(f, "members", d.members)?,
        rate: get(f, "rate", d.rate)?,
        offered: f
            .get("offered")
            .map(|v| v.parse())
            .transpose()
            .map_err(|_| "--offered".to_owned())?,
        duration: secs("duration", d.duration)?,
        warmup: secs("warmup", d.warmup)?,
        connections: get(f, "connections", d.connections)?,
        slow_fraction: get(f, "slow", d.slow_fraction)?,
        round_trips: get(f, "round-trips", d.round_trips)?,
        setup_concurrency: get(f, "concurrency", d.setup_concurrency)?.max(1),
        arrivals: get(f, "arrivals", d.arrivals)?,
        factor: get(f, "factor", d.factor)?,
        sends_per_s: f
            .get("sends-per-s")
            .map(|v| v.parse())
            .transpose()
            .map_err(|_| "--sends-per-s".to_owned())?,
        calibrate: secs("calibrate", d.calibrate)?,
        calibrate_clients: get(f, "calibrate-clients", d.calibrate_clients)?.max(1),
        admin_key: f.get("admin-key").cloned(),
        dialect: match f.get("dialect") {
            None => loadgen::Dialect::Ws,
            Some(d) => {
                loadgen::Dialect::parse(d).ok_or_else(|| format!("--dialect: unknown {d:?}"))?
            }
        },
        tls: f.get("tls-ca").map(|t| loadgen::tls::TlsTrust::parse(t)),
    })
}

/// Refuses anything but a loopback `IP:PORT`.
fn loopback(addr: &str) -> Result<(), String> {
    let ip: std::net::SocketAddr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not IP:PORT"))?;
    if ip.ip().is_loopback() {
        Ok(())
    } else {
        Err(format!("{addr}: loopback addresses only"))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match real_main(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("loadgen: {e}\n\n{USAGE}");
            2
        }
    };
    std::process::exit(code);
}

fn real_main(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("run") => {
            let kind = args.get(1).ok_or("run needs a scenario")?.clone();
            let flags = parse_flags(&args[2..])?;
            let name = flags.get("name").cloned().unwrap_or_else(|| kind.clone());
            let opts = options(&flags)?;
            // Thousands of sockets: raise the open-file limit as far as allowed.
            if let Err(e) = rlimit::increase_nofile_limit(1 << 20) {
                eprintln!("loadgen: could not raise the open-file limit: {e}");
            }
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
                .enable_all()
                .build()
                .map_err(|e| format!("runtime: {e}"))?;
            // The whole scenario is bounded: setup, load, drain and catch-up.
            let limit = opts.duration + opts.warmup + Duration::from_secs(120);
            let outcome = rt.block_on(async {
                match tokio::time::timeout(limit, loadgen::run(&kind, &name, &opts)).await {
                    Ok(Ok(o)) => o,
                    Ok(Err(e)) => Outcome::failed(&opts, &name, &e),
                    Err(_) => Outcome::failed(&opts, &name, "time limit"),
                }
            });
            rt.shutdown_timeout(Duration::from_secs(2));
            report::print_table(std::slice::from_ref(&outcome));
            if let Some(path) = flags.get("json") {
                report::append_json(&PathBuf::from(path), &outcome)
                    .map_err(|e| format!("writing {path}: {e}"))?;
            }
            Ok(())
        }
        Some("soak") => {
            let flags = parse_flags(&args[1..])?;
            let opts = options(&flags)?;
            let d = SoakOptions::default();
            let so = SoakOptions {
                minutes: get(&flags, "minutes", d.minutes)?,
                storm_clients: get(&flags, "storm", d.storm_clients)?,
                period: Duration::from_secs_f64(get(&flags, "period", d.period.as_secs_f64())?),
                settle: Duration::from_secs_f64(get(&flags, "settle", d.settle.as_secs_f64())?),
            };
            if so.minutes <= 0.0 || so.period.is_zero() {
                return Err("--minutes and --period must be positive".into());
            }
            if let Err(e) = rlimit::increase_nofile_limit(1 << 20) {
                eprintln!("loadgen: could not raise the open-file limit: {e}");
            }
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
                .enable_all()
                .build()
                .map_err(|e| format!("runtime: {e}"))?;
            // Bounded: the soak's own time, plus setup and the last storm's overrun.
            let limit =
                Duration::from_secs_f64(so.minutes * 60.0) + so.period + Duration::from_secs(300);
            let result = rt.block_on(async {
                tokio::time::timeout(limit, scenarios::soak(&opts, &so))
                    .await
                    .map_err(|_| "the soak overran its time limit".to_owned())?
            });
            rt.shutdown_timeout(Duration::from_secs(2));
            let report = result?;
            scenarios::print_soak(&report);
            if let Some(path) = flags.get("json") {
                let line = serde_json::to_string(&report).map_err(|e| e.to_string())?;
                use std::io::Write as _;
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .and_then(|mut f| writeln!(f, "{line}"))
                    .map_err(|e| format!("writing {path}: {e}"))?;
            }
            Ok(())
        }
        Some("report") => {
            let flags = parse_flags(&args[1..])?;
            let json = flags.get("json").ok_or("report needs --json")?;
            let out = flags.get("out").ok_or("report needs --out")?;
            let all =
                report::read_json(&PathBuf::from(json)).map_err(|e| format!("{json}: {e}"))?;
            let context = match flags.get("context") {
                Some(p) => std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"))?,
                None => String::new(),
            };
            let appendix = match flags.get("appendix") {
                Some(p) => std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"))?,
                None => String::new(),
            };
            report::print_table(&all);
            let md = report::markdown(&all, context.trim(), &appendix);
            report::write_section(&PathBuf::from(out), &md).map_err(|e| format!("{out}: {e}"))
        }
        Some("cluster-table") => {
            let flags = parse_flags(&args[1..])?;
            let json = flags.get("json").ok_or("cluster-table needs --json")?;
            let all =
                report::read_json(&PathBuf::from(json)).map_err(|e| format!("{json}: {e}"))?;
            print!("{}", report::cluster_markdown(&all));
            Ok(())
        }
        Some("help") | Some("--help") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}")),
    }
}
