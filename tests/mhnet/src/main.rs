// SPDX-License-Identifier: GPL-2.0
//! mhnet: the traffic tool of the VM tests of ip_vs_mh_rs. It runs real
//! servers that answer with their name, and clients that send real TCP/UDP
//! flows from chosen source addresses through IPVS and record which server
//! answered each. std only, one thread per flow at most, no process per flow.

mod args;
mod probe;
mod rate;
mod serve;
mod streams;
mod sys;
mod util;

use std::process::ExitCode;

const USAGE: &str = "\
mhnet: TCP/UDP traffic tool of the ip_vs_mh_rs VM tests

USAGE:
  mhnet serve --id NAME [--tcp ADDR:PORT]... [--udp ADDR:PORT]...
      Real server. TCP: writes `NAME\\n` to each connection, then echoes every
      byte until EOF. UDP: answers each datagram with `NAME <its bytes>`, from
      the address it was sent to. ADDR: IPv4 or [IPv6], 0.0.0.0 and [::]
      included (IPv6 sockets are V6ONLY, so both can be served). Prints
      `ready` once every socket listens; runs until killed.

  mhnet probe --proto tcp|udp --target VIP:PORT --clients FILE|-
              [--timeout-ms N (2000)] [--retries N (2)] [--parallel K (8)]
      One flow per line `ADDR:PORT` / `[V6]:PORT` of FILE (`-`: stdin; blank
      lines and # comments skipped), from exactly that source. TCP: connect,
      read the server's name, close with an RST (no TIME_WAIT: the 4-tuple
      can be reused at once). UDP: send a random token, await `NAME token`.
      Timeouts are retried, each try within --timeout-ms. K flows at a time
      (list a source twice only with --parallel 1).
      stdout, one line per client in input order (CLIENT as written):
        CLIENT NAME | CLIENT ERROR refused|timeout|reset|eof|...
      stderr: `probed N flows: M answered, E errors, T ms`. Exit 0.

  mhnet streams --target VIP:PORT --clients FILE [--duration-s S]
                [--interval-ms N (100)] [--ready-file PATH] [--stop-file PATH]
      One long-lived TCP connection per client (bound to that source). Each
      reads the server's name, then every interval sends a numbered line and
      checks its echo byte for byte (5 s at most). Once every stream has
      connected (or failed to), `ready` is written to --ready-file. Streams
      run S seconds from then (default 10, or until 600 without S when
      --stop-file is given), or until the --stop-file exists, 600 s at most;
      then they close with a FIN. stdout, one line per client:
        CLIENT NAME_AT_START NAME_AT_END sent=N verified=N
          status=ok|reset|timeout|mismatch|connect-failed
      Exit 0 if every stream is ok, else 1.

  mhnet rate --target VIP:PORT --source ADDR [--duration-ms N (5000)]
             [--max N] [--parallel K (4)] [--timeout-ms N (2000)]
             [--interval-ms N (0)]
      Load generator: K workers open short TCP connections from ADDR (any
      port) to VIP:PORT, each reading the server's name and closing with an
      RST, until N ms have passed or --max connections were started; with
      --interval-ms, each worker starts one connection per interval. stdout:
        rate: conns=N errors=E ms=T per_s=R first_error=REASON|none
      Exit 0 if no connection failed, else 1.

  mhnet help | --help | -h

Bad arguments: one message on stderr, exit 2.
";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = argv.first() else {
        eprintln!("mhnet: missing subcommand (mhnet --help)");
        return ExitCode::from(2);
    };
    let rest = &argv[1..];
    if rest.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let res = match cmd.as_str() {
        "serve" => serve::main(rest),
        "probe" => probe::main(rest),
        "streams" => streams::main(rest),
        "rate" => rate::main(rest),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => Err(format!("unknown subcommand '{other}' (mhnet --help)")),
    };
    match res {
        Ok(code) => ExitCode::from(code as u8),
        Err(msg) => {
            eprintln!("mhnet {cmd}: {msg}");
            ExitCode::from(2)
        }
    }
}
