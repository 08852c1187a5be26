//! Private networks between containers: hosts with their own names, addresses and network
//! namespaces on a bridge in the test's network namespace; partitions, heals, kills, pauses.
//! Run by tinyo.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use tinyo::{isolated, Network, Termination};
use tinyo_tests::guard;

/// Host `a`: an echo server on port 7000.
fn echo_server() {
    let listener = TcpListener::bind("0.0.0.0:7000").unwrap();
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        std::thread::spawn(move || {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut writer = conn;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if writer.write_all(line.as_bytes()).is_err() {
                    break;
                }
                line.clear();
            }
        });
    }
}

fn connect(host: &str, port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
    let addr = (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or(std::io::ErrorKind::NotFound)?;
    let s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    Ok(s)
}

/// Host `b`: for 6 s, keep a connection to `a` (by name) and ping it; print what happens.
fn echo_client() {
    let end = Instant::now() + Duration::from_secs(6);
    let mut conn: Option<(TcpStream, BufReader<TcpStream>)> = None;
    while Instant::now() < end {
        match conn.take() {
            None => match connect("a", 7000, Duration::from_millis(250)) {
                Ok(s) => {
                    println!("connected");
                    let r = BufReader::new(s.try_clone().unwrap());
                    conn = Some((s, r));
                }
                Err(e) => println!("connect-failed {:?}", e.kind()),
            },
            Some((mut s, mut r)) => {
                let mut line = String::new();
                if s.write_all(b"ping\n").is_ok()
                    && r.read_line(&mut line).is_ok_and(|n| n > 0)
                    && line == "ping\n"
                {
                    println!("echo");
                    conn = Some((s, r));
                } else {
                    println!("lost");
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[isolated(timeout = "20s")]
fn echo_by_name_partition_heal_and_kill() {
    guard();
    let net = Network::new(&["a", "b"]).unwrap();
    let a = net.spawn("a", echo_server).unwrap();
    // `b` starts once `a` answers (from here, the test's end of the bridge): a first ARP
    // request sent before `a` is up would be retried only a second later, and the phases
    // below are timed.
    let start = Instant::now();
    while connect(a.addr(), 7000, Duration::from_millis(250)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(5), "a never answered");
        std::thread::sleep(Duration::from_millis(20));
    }
    let b = net.spawn("b", echo_client).unwrap();
    std::thread::sleep(Duration::from_millis(700));
    net.partition(&["a"], &["b"]).unwrap();
    std::thread::sleep(Duration::from_millis(900));
    net.heal().unwrap();
    // Generous: after a cut, the neighbour (ARP) entries take up to a few seconds to recover.
    std::thread::sleep(Duration::from_millis(2500));
    a.kill();
    let out = b.wait().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status, Some(Termination::Exited(0)), "{text}");
    // Phases, in order: echoes; lost and failed connects while cut off; echoes again after
    // the heal; lost again once `a` is dead.
    let lines: Vec<&str> = text.lines().collect();
    let first = |pred: &dyn Fn(&str) -> bool, from: usize| {
        lines
            .iter()
            .skip(from)
            .position(|l| pred(l))
            .map(|i| i + from)
    };
    let echo1 = first(&|l| l == "echo", 0)
        .unwrap_or_else(|| panic!("echoes before the partition, in:\n{text}"));
    let cut = first(&|l| l == "lost" || l.starts_with("connect-failed"), echo1)
        .unwrap_or_else(|| panic!("the partition is felt, in:\n{text}"));
    let echo2 = first(&|l| l == "echo", cut)
        .unwrap_or_else(|| panic!("echoes again after the heal, in:\n{text}"));
    let dead = first(&|l| l == "lost" || l.starts_with("connect-failed"), echo2)
        .unwrap_or_else(|| panic!("a's death is felt, in:\n{text}"));
    assert!(echo1 < cut && cut < echo2 && echo2 < dead, "{text}");
}

/// A replica of a counter on port 7100: `inc` increments it here and on the other replicas
/// (best effort), `rep` is such a forwarded increment, `get` answers the value.
fn replica() {
    let me = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let listener = TcpListener::bind("0.0.0.0:7100").unwrap();
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let counter = counter.clone();
        let me = me.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            BufReader::new(conn.try_clone().unwrap())
                .read_line(&mut line)
                .unwrap_or(0);
            match line.trim() {
                "inc" => {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    for peer in ["r1", "r2", "r3"].into_iter().filter(|p| *p != me) {
                        if let Ok(mut s) = connect(peer, 7100, Duration::from_millis(200)) {
                            let _ = s.write_all(b"rep\n");
                            let mut ack = String::new();
                            let _ = BufReader::new(s).read_line(&mut ack);
                        }
                    }
                    let _ = conn.write_all(b"ok\n");
                }
                "rep" => {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let _ = conn.write_all(b"ok\n");
                }
                "get" => {
                    let _ = writeln!(
                        conn,
                        "{}",
                        counter.load(std::sync::atomic::Ordering::SeqCst)
                    );
                }
                _ => {}
            }
        });
    }
}

fn ask(host: &str, what: &str) -> Option<String> {
    let mut s = connect(host, 7100, Duration::from_millis(300)).ok()?;
    s.write_all(format!("{what}\n").as_bytes()).ok()?;
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer).ok()?;
    Some(answer.trim().to_owned())
}

/// `ask`, retried for up to 10 s (hosts start in their own time).
fn ask_until(host: &str, what: &str, want: &str) -> bool {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if ask(host, what).as_deref() == Some(want) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The client: 5 increments through r1; once r1 is gone, 5 through r2; then the value at r2
/// and r3.
fn counter_client() {
    for _ in 0..5 {
        assert!(ask_until("r1", "inc", "ok"), "r1 never answered");
    }
    println!("phase1 done");
    let end = Instant::now() + Duration::from_secs(10);
    while connect("r1", 7100, Duration::from_millis(200)).is_ok() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    for _ in 0..5 {
        assert!(ask_until("r2", "inc", "ok"), "r2 never answered");
    }
    println!(
        "r2={} r3={}",
        ask("r2", "get").unwrap_or_default(),
        ask("r3", "get").unwrap_or_default()
    );
}

#[isolated(timeout = "30s")]
fn a_replicated_counter_survives_the_loss_of_a_host() {
    guard();
    let net = Network::new(&["r1", "r2", "r3", "cl"]).unwrap();
    let r1 = net.spawn("r1", replica).unwrap();
    let _r2 = net.spawn("r2", replica).unwrap();
    let _r3 = net.spawn("r3", replica).unwrap();
    let cl = net.spawn("cl", counter_client).unwrap();
    // The test is on the network too: once r1 has counted the client's 5, kill it.
    assert!(ask_until(r1.addr(), "get", "5"), "phase 1 never finished");
    r1.kill();
    let out = cl.wait().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status,
        Some(Termination::Exited(0)),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("phase1 done\nr2=10 r3=10\n"), "{text}");
}

/// A paused host answers nothing; resumed, it answers again.
#[isolated(timeout = "20s")]
fn pause_and_resume() {
    guard();
    // (Any /24 will do: the network exists only inside this test.)
    let net = Network::with_prefix(&["a", "p"], "10.77.3").unwrap();
    assert!(Network::with_prefix(&["x"], "10.77").is_err());
    let a = net.spawn("a", echo_server).unwrap();
    let probe = |expect_up: bool| {
        fn up() {
            assert!(std::fs::read_to_string("/etc/hosts")
                .unwrap()
                .contains("10.77.3.1\ta\n"));
            let end = Instant::now() + Duration::from_secs(10);
            loop {
                let echoed = connect("a", 7000, Duration::from_millis(300)).and_then(|mut s| {
                    s.write_all(b"x\n")?;
                    let mut l = String::new();
                    BufReader::new(s).read_line(&mut l)?;
                    Ok(l)
                });
                match echoed {
                    Ok(l) if l == "x\n" => return,
                    _ if Instant::now() > end => panic!("a never answered: {echoed:?}"),
                    _ => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        fn down() {
            std::thread::sleep(Duration::from_millis(200));
            let answered = connect("a", 7000, Duration::from_millis(300)).and_then(|mut s| {
                s.write_all(b"x\n")?;
                let mut l = String::new();
                BufReader::new(s).read_line(&mut l)
            });
            assert!(answered.is_err(), "a paused host answered");
        }
        let host = net.spawn("p", if expect_up { up } else { down }).unwrap();
        host.wait().unwrap().status
    };
    assert_eq!(probe(true), Some(Termination::Exited(0)));
    a.pause().unwrap();
    assert_eq!(probe(false), Some(Termination::Exited(0)));
    a.resume().unwrap();
    assert_eq!(probe(true), Some(Termination::Exited(0)));
}

/// `tc netem` on a link: a delay shows in the round trip, or netem's absence is said.
#[isolated(timeout = "20s")]
fn a_delayed_link() {
    guard();
    let net = Network::new(&["a", "c"]).unwrap();
    let _a = net.spawn("a", echo_server).unwrap();
    match net.netem("a", "delay 150ms") {
        Err(e) => assert!(
            e.to_string().contains("tc netem is unavailable here"),
            "{e}"
        ),
        Ok(()) => {
            fn timed() {
                std::thread::sleep(Duration::from_millis(200));
                let mut s = connect("a", 7000, Duration::from_secs(2)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let start = Instant::now();
                s.write_all(b"x\n").unwrap();
                let mut l = String::new();
                BufReader::new(s).read_line(&mut l).unwrap();
                assert!(
                    start.elapsed() >= Duration::from_millis(150),
                    "{:?}",
                    start.elapsed()
                );
            }
            let c = net.spawn("c", timed).unwrap();
            assert_eq!(c.wait().unwrap().status, Some(Termination::Exited(0)));
        }
    }
}

tinyo::main!();
