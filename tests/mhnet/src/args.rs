// SPDX-License-Identifier: GPL-2.0
//! Hand-written argument parsing: every option takes a value, given as
//! `--name VALUE` or `--name=VALUE`. Errors are one-line messages; the
//! caller prints them and exits 2.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::str::FromStr;

/// Options of one subcommand, by name (without the leading `--`).
pub struct Opts {
    values: BTreeMap<&'static str, Vec<String>>,
}

/// Parses `args` against the options a subcommand knows: `single` ones may
/// be given once, `repeated` ones any number of times.
pub fn parse(
    args: &[String],
    single: &[&'static str],
    repeated: &[&'static str],
) -> Result<Opts, String> {
    let mut values: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(body) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument '{arg}'"));
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(&key) = single.iter().chain(repeated).find(|k| **k == name) else {
            return Err(format!("unknown option '--{name}'"));
        };
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .cloned()
                .ok_or_else(|| format!("option '--{name}' needs a value"))?,
        };
        let list = values.entry(key).or_default();
        if !list.is_empty() && single.contains(&key) {
            return Err(format!("option '--{name}' given twice"));
        }
        list.push(value);
    }
    Ok(Opts { values })
}

impl Opts {
    /// All values of a repeated option.
    pub fn all(&self, name: &str) -> &[String] {
        self.values.get(name).map_or(&[], |v| v.as_slice())
    }

    /// The value of a single option, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.all(name).first().map(String::as_str)
    }

    /// The value of a mandatory single option.
    pub fn required(&self, name: &str) -> Result<&str, String> {
        self.get(name)
            .ok_or_else(|| format!("option '--{name}' is required"))
    }

    /// A number option within `min..=max`, or `default`.
    pub fn num<T>(&self, name: &str, default: T, min: T, max: T) -> Result<T, String>
    where
        T: FromStr + PartialOrd + Copy + std::fmt::Display,
    {
        let Some(s) = self.get(name) else {
            return Ok(default);
        };
        match s.parse::<T>() {
            Ok(v) if v >= min && v <= max => Ok(v),
            _ => Err(format!(
                "option '--{name}': '{s}' is not a number in {min}..={max}"
            )),
        }
    }
}

/// Parses `ADDR:PORT` or `[V6]:PORT`.
pub fn sock_addr(s: &str, what: &str) -> Result<SocketAddr, String> {
    SocketAddr::from_str(s.trim())
        .map_err(|_| format!("{what}: '{s}' is not ADDR:PORT or [IPV6]:PORT"))
}

/// One line of a clients list: its text (as output is labelled) and address.
pub struct Client {
    pub text: String,
    pub addr: SocketAddr,
}

/// Reads a clients list (`-` for stdin): one `ADDR:PORT` or `[V6]:PORT` a
/// line, blank lines and `#` comments skipped. Every client must be of
/// the target's address family.
pub fn clients(path: &str, target: &SocketAddr, max: usize) -> Result<Vec<Client>, String> {
    let mut text = String::new();
    if path == "-" {
        io::stdin()
            .take(64 << 20)
            .read_to_string(&mut text)
            .map_err(|e| format!("reading clients from stdin: {e}"))?;
    } else {
        text = fs::read_to_string(path).map_err(|e| format!("reading clients '{path}': {e}"))?;
    }
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let addr = sock_addr(line, &format!("clients line {}", n + 1))?;
        if addr.is_ipv4() != target.is_ipv4() {
            return Err(format!(
                "clients line {}: {addr} is not of the target's address family",
                n + 1
            ));
        }
        if out.len() == max {
            return Err(format!("more than {max} clients"));
        }
        out.push(Client {
            text: line.to_string(),
            addr,
        });
    }
    if out.is_empty() {
        return Err(format!("no clients in '{path}'"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options() {
        let o = parse(
            &v(&["--id", "r1", "--tcp=0.0.0.0:80", "--tcp", "[::]:80"]),
            &["id"],
            &["tcp", "udp"],
        )
        .unwrap();
        assert_eq!(o.get("id"), Some("r1"));
        assert_eq!(o.all("tcp"), ["0.0.0.0:80", "[::]:80"]);
        assert!(o.all("udp").is_empty());
        assert!(parse(&v(&["--id", "a", "--id", "b"]), &["id"], &[]).is_err());
        assert!(parse(&v(&["--nope", "1"]), &["id"], &[]).is_err());
        assert!(parse(&v(&["--id"]), &["id"], &[]).is_err());
        assert!(parse(&v(&["stray"]), &["id"], &[]).is_err());
    }

    #[test]
    fn numbers() {
        let o = parse(&v(&["--n", "5", "--bad", "x"]), &["n", "bad"], &[]).unwrap();
        assert_eq!(o.num("n", 1u32, 1, 10), Ok(5));
        assert_eq!(o.num("missing", 7u32, 1, 10), Ok(7));
        assert!(o.num("n", 1u32, 6, 10).is_err());
        assert!(o.num("bad", 1u32, 1, 10).is_err());
    }

    #[test]
    fn clients_file() {
        let dir = std::env::temp_dir().join(format!("mhnet-args-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c");
        fs::write(&f, "# c\n\n10.0.1.2:40000\n 10.0.1.2:40001 # x\n").unwrap();
        let t4: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let t6: SocketAddr = "[fd00::1]:80".parse().unwrap();
        let got = clients(f.to_str().unwrap(), &t4, 10).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].addr.port(), 40001);
        assert_eq!(got[1].text, "10.0.1.2:40001");
        assert!(clients(f.to_str().unwrap(), &t6, 10).is_err());
        assert!(clients(f.to_str().unwrap(), &t4, 1).is_err());
        fs::write(&f, "10.0.1.2\n").unwrap();
        assert!(clients(f.to_str().unwrap(), &t4, 10).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
