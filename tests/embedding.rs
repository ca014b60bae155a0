//! The library as an embedder uses it: a host tokio runtime drives chardevd's
//! actor system (on its own thread) through `runtime::Handle` and attaches its
//! own device models as frontends.
mod common;

use bytes::Bytes;
use chardevd::backends::{ChardevBackend, Null, Ringbuf};
use chardevd::frontend::FrontendEvent;
use chardevd::{self as runtime, Config};
use std::time::Duration;

fn ring(size: i64) -> ChardevBackend {
    ChardevBackend::new(Ringbuf { size: Some(size) })
}

fn null() -> ChardevBackend {
    ChardevBackend::new(Null {})
}

async fn next(fe: &mut chardevd::frontend::Frontend) -> FrontendEvent {
    tokio::time::timeout(Duration::from_secs(5), fe.recv())
        .await
        .expect("an event")
        .expect("open channel")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frontend_writes_into_a_ringbuf_and_gets_opened_and_break() {
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("log", ring(16)).await.unwrap();
    let mut fe = h.attach("log").await.unwrap();
    assert_eq!(
        next(&mut fe).await,
        FrontendEvent::Opened,
        "a ringbuf is open at creation"
    );
    assert_eq!(fe.write(Bytes::from_static(b"hello")).await.unwrap(), 5);
    assert_eq!(h.ringbuf_read_text("log", 100).await.unwrap(), "hello");
    h.chardev_send_break("log").await.unwrap();
    assert_eq!(next(&mut fe).await, FrontendEvent::Break);

    // frontend-open follows set_open; a chardev in use cannot be removed.
    assert!(!h.query_chardev().await.unwrap()[0].frontend_open);
    fe.set_open(true).await.unwrap();
    assert!(h.query_chardev().await.unwrap()[0].frontend_open);
    assert_eq!(
        h.chardev_remove("log").await.unwrap_err().to_string(),
        "Chardev 'log' is busy"
    );
    assert_eq!(
        h.attach("log").await.unwrap_err().to_string(),
        "chardev 'log' is already in use"
    );
    fe.detach().await.unwrap();
    h.chardev_remove("log").await.unwrap();
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chardev_change_moves_the_frontend_to_the_new_backend() {
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("c", ring(64)).await.unwrap();
    let mut fe = h.attach("c").await.unwrap();
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened);
    fe.write(Bytes::from_static(b"old")).await.unwrap();

    // ringbuf (open) -> null (never open): the frontend is told CLOSED.
    h.chardev_change("c", null()).await.unwrap();
    assert_eq!(next(&mut fe).await, FrontendEvent::Closed);
    assert_eq!(fe.write(Bytes::from_static(b"gone")).await.unwrap(), 4);
    let rows = h.query_chardev().await.unwrap();
    assert_eq!((rows[0].label.as_str(), rows[0].filename.as_str()), ("c", "null"));

    // null -> ringbuf: OPENED, and writes land in the new ring.
    h.chardev_change("c", ring(8)).await.unwrap();
    assert_eq!(next(&mut fe).await, FrontendEvent::Opened);
    fe.write(Bytes::from_static(b"new")).await.unwrap();
    assert_eq!(h.ringbuf_read_text("c", 100).await.unwrap(), "new");

    // A failed change leaves the frontend where it was.
    assert!(h.chardev_change("c", ring(3)).await.is_err());
    fe.write(Bytes::from_static(b"still")).await.unwrap();
    assert_eq!(h.ringbuf_read_text("c", 100).await.unwrap(), "still");
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedders_subscribe_to_events_and_errors_match_qmp() {
    let h = runtime::spawn(Config::default()).unwrap();
    let mut events = h.events(16).await.unwrap();
    h.chardev_add("n", null()).await.unwrap();
    assert_eq!(
        h.chardev_add("n", null()).await.unwrap_err().to_string(),
        "Chardev with id 'n' already exists"
    );
    assert_eq!(
        h.ringbuf_read_text("n", 1).await.unwrap_err().to_string(),
        "n is not a ringbuf device"
    );
    assert_eq!(
        h.ringbuf_read_text("x", 1).await.unwrap_err().to_string(),
        "Device 'x' not found"
    );
    assert_eq!(
        h.chardev_remove("x").await.unwrap_err().to_string(),
        "Chardev 'x' not found"
    );
    assert_eq!(
        h.chardev_change("x", null()).await.unwrap_err().to_string(),
        "Chardev 'x' does not exist"
    );
    // Drive a port device as QMP would.
    let port = chardevd::commands::Device::Port { chardev: "n".into() };
    h.device_add(Some("p"), port).await.unwrap();
    h.port_set_open("p", true).await.unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        ev.event,
        chardevd::events::Event::VserportChange {
            id: "p".into(),
            open: true
        }
    );
    assert!(ev.timestamp.seconds > 0);
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_handles_and_two_systems_coexist() {
    let a = runtime::spawn(Config::default()).unwrap();
    let b = runtime::spawn(Config::default()).unwrap();
    a.chardev_add("same", null()).await.unwrap();
    b.chardev_add("same", null()).await.unwrap();
    let a2 = a.clone();
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let a = a2.clone();
            tokio::spawn(async move { a.chardev_add(&format!("c{i}"), ring(4)).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(a.query_chardev().await.unwrap().len(), 33);
    assert_eq!(b.query_chardev().await.unwrap().len(), 1);
    a.shutdown();
    b.shutdown();
    a.join();
    b.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedder_opens_a_qmp_listener_at_run_time_and_sees_the_same_chardevs() {
    use chardevd::QmpAddr;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("shared", ring(8)).await.unwrap();
    let bound = h
        .listen(QmpAddr::Tcp {
            host: "127.0.0.1".into(),
            port: 0,
        })
        .await
        .unwrap();
    let QmpAddr::Tcp { port, .. } = bound else {
        panic!("{bound:?}")
    };
    assert!(h.listeners().contains(&bound));
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (rd, mut wr) = stream.into_split();
    let mut lines = BufReader::new(rd).lines();
    assert!(lines.next_line().await.unwrap().unwrap().starts_with(r#"{"QMP""#));
    wr.write_all(b"{\"execute\":\"qmp_capabilities\"}{\"execute\":\"query-chardev\"}")
        .await
        .unwrap();
    assert_eq!(lines.next_line().await.unwrap().unwrap(), "{\"return\": {}}");
    assert_eq!(
        lines.next_line().await.unwrap().unwrap(),
        "{\"return\": [{\"frontend-open\": false, \"filename\": \"ringbuf\", \"label\": \"shared\"}]}"
    );
    h.shutdown();
    h.join();
}

/// A TCP port of a socket chardev, once it listens.
async fn listening_port(h: &runtime::Handle, id: &str) -> u16 {
    let rows = h.query_chardev().await.unwrap();
    let f = &rows.iter().find(|r| r.label == id).unwrap().filename;
    f.rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches(",server=on")
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frontend_is_a_byte_stream_for_framed_and_its_events_come_apart() {
    use chardevd::backends::Socket;
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("s", ChardevBackend::new(Socket::tcp_server("127.0.0.1", 0)))
        .await
        .unwrap();
    // A device model: upper-cases each line, through tokio-util's Framed.
    let fe = h.attach("s").await.unwrap();
    let control = fe.control();
    let (reader, writer, mut events) = fe.split();
    let model = tokio::spawn(async move {
        let lines = tokio_util::codec::FramedRead::new(reader, tokio_util::codec::LinesCodec::new());
        let mut out = tokio_util::codec::FramedWrite::new(writer, tokio_util::codec::LinesCodec::new());
        let mut lines = lines.map(|l| l.map(|l| l.to_uppercase()));
        out.send_all(&mut lines).await
    });
    control.set_open(true).await.unwrap();
    assert!(h.query_chardev().await.unwrap()[0].frontend_open);
    let port = listening_port(&h, "s").await;
    let client = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (rd, mut wr) = client.into_split();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap(),
        Some(chardevd::frontend::ChardevEvent::Opened),
        "the event stream sees the client connect"
    );
    wr.write_all(b"hello\nworld\n").await.unwrap();
    let mut rd = tokio::io::BufReader::new(rd);
    let mut line = String::new();
    for want in ["HELLO\n", "WORLD\n"] {
        line.clear();
        tokio::time::timeout(Duration::from_secs(5), rd.read_line(&mut line))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(line, want);
    }
    drop((rd, wr));
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap(),
        Some(chardevd::frontend::ChardevEvent::Closed)
    );
    // Dropping every part detaches the frontend: the chardev may go.
    model.abort();
    let _ = model.await;
    drop(events);
    let mut removed = Err(chardevd::error::Error::ShuttingDown);
    for _ in 0..100 {
        removed = h.chardev_remove("s").await;
        if removed.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    removed.unwrap();
    assert!(
        control.set_open(false).await.is_err(),
        "a control of a gone frontend fails"
    );
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frontend_works_with_tokio_io_copy_both_ways_with_backpressure() {
    use chardevd::backends::Socket;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.sock");
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("c", ChardevBackend::new(Socket::unix_server(path.to_str().unwrap())))
        .await
        .unwrap();
    let fe = h.attach("c").await.unwrap();
    // An echo written as an embedder would: copy what it reads into what it writes.
    let echo = tokio::spawn(async move {
        let (mut rd, mut wr) = tokio::io::split(fe);
        tokio::io::copy(&mut rd, &mut wr).await
    });
    let mut client = tokio::net::UnixStream::connect(&path).await.unwrap();
    let data: Vec<u8> = (0..4 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let (mut crd, mut cwr) = client.split();
    let send = async {
        cwr.write_all(&data).await.unwrap();
    };
    let mut got = vec![0u8; data.len()];
    let recv = async {
        crd.read_exact(&mut got).await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(30), async { tokio::join!(send, recv) })
        .await
        .unwrap();
    assert!(got == data, "4 MiB came back intact through tokio::io::copy");
    echo.abort();
    h.shutdown();
    h.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_after_the_system_stopped_fail_instead_of_answering_old_state() {
    let h = runtime::spawn(Config::default()).unwrap();
    h.chardev_add("r", ring(16)).await.unwrap();
    let mut events = h.events(4).await.unwrap();
    h.quit().await.unwrap();
    assert!(matches!(
        tokio::time::timeout(Duration::from_secs(5), events.recv()).await.unwrap(),
        Some(Ok(e)) if matches!(e.event, chardevd::events::Event::Shutdown { .. })
    ));
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .unwrap(),
        None
    );
    h.join();
    assert!(matches!(
        h.query_chardev().await,
        Err(chardevd::error::Error::ShuttingDown)
    ));
    assert!(h.ringbuf_read("r", 1).await.is_err());
    assert!(h.query_version().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_config_says_what_the_command_line_can_and_start_and_wait_never_block() {
    use chardevd::backends::Socket;
    use chardevd::commands::{Device, DeviceAdd, MonitorAdd};
    use chardevd::{ChardevSpec, ConfigItem, Handle, QmpAddr};
    let dir = tempfile::tempdir().unwrap();
    let qmp = dir.path().join("q.sock");
    let console = dir.path().join("con.sock");
    let cfg = Config {
        chardevs: vec![
            // mux=on: a console and a QMP monitor share one socket.
            ChardevSpec::new(
                "con",
                ChardevBackend::new(Socket::unix_server(console.to_str().unwrap())),
            )
            .muxed(),
            ChardevSpec::new("n", null()),
        ],
        monitors: vec![MonitorAdd {
            id: Some("mon0".into()),
            chardev: "con".into(),
            pretty: false,
        }],
        devices: vec![DeviceAdd {
            id: Some("p0".into()),
            device: Device::Port { chardev: "n".into() },
        }],
        qmp: vec![QmpAddr::unix(&qmp)],
        ..Config::default()
    };
    let h = Handle::start(cfg).await.unwrap();
    let ids: Vec<_> = h.query_chardev().await.unwrap().into_iter().map(|r| r.label).collect();
    assert_eq!(ids, ["con-base", "con", "n"]);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&qmp).unwrap().permissions().mode() & 0o777, 0o600);
    // A listener stops alone; the system goes on.
    assert!(h.close_listener(&QmpAddr::unix(&qmp)));
    for _ in 0..100 {
        if !qmp.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!qmp.exists(), "its socket file is removed");
    assert!(h.is_running());
    // A bind failure is a typed error naming the address.
    let err = h.listen(QmpAddr::unix("/nonexistent-dir/q.sock")).await.unwrap_err();
    assert!(matches!(err, chardevd::error::Error::Listen { .. }), "{err:?}");
    h.quit().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), h.wait()).await.unwrap();
    assert!(!h.is_running());

    // A failing item names itself; nothing is left running.
    let bad = Config {
        chardevs: vec![ChardevSpec::new("r", ring(3))],
        ..Config::default()
    };
    let err = Handle::start(bad).await.unwrap_err();
    match err {
        chardevd::error::Error::Startup { item, source } => {
            assert_eq!(item, ConfigItem::Chardev(0));
            assert_eq!(
                source.to_string(),
                "Failed to add chardev 'r': size of ringbuf chardev must be power of two"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// The typed API and QMP answer bad input alike: each case runs once
/// through a `Handle` method and once as QMP over a socket of the same
/// system, and the class and text must be the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_through_the_typed_api_gets_the_errors_qmp_gives() {
    use chardevd::commands::{Device, InputEvent, ObjectProps, YankInstance};
    use chardevd::error::Error;
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("q.sock");
    let h = chardevd::Handle::start(Config {
        qmp: vec![chardevd::QmpAddr::unix(&sock)],
        ..Config::default()
    })
    .await
    .unwrap();
    h.chardev_add("n", null()).await.unwrap();
    h.chardev_add("r", ring(64)).await.unwrap();
    h.device_add(Some("e"), Device::Echo { chardev: "r".into() })
        .await
        .unwrap();
    let qmp = {
        let sock = sock.clone();
        move |cmd: String| {
            let sock = sock.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    let mut c = common::Client::negotiated(&sock);
                    let reply: serde_json::Value = serde_json::from_str(&c.cmd(&cmd)).unwrap();
                    let e = &reply["error"];
                    (
                        e["class"].as_str().unwrap_or("none").to_owned(),
                        e["desc"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .await
                .unwrap()
            }
        }
    };
    let api = |e: Error| (e.class().as_str().to_owned(), e.to_string());
    let cases: Vec<((String, String), String)> = vec![
        (api(h.chardev_add("n", null()).await.unwrap_err()),
            r#"{"execute":"chardev-add","arguments":{"id":"n","backend":{"type":"null","data":{}}}}"#.into()),
        (api(h.chardev_add("x", ring(3)).await.unwrap_err()),
            r#"{"execute":"chardev-add","arguments":{"id":"x","backend":{"type":"ringbuf","data":{"size":3}}}}"#.into()),
        (api(h.chardev_remove("nope").await.unwrap_err()),
            r#"{"execute":"chardev-remove","arguments":{"id":"nope"}}"#.into()),
        (api(h.chardev_remove("r").await.unwrap_err()),
            r#"{"execute":"chardev-remove","arguments":{"id":"r"}}"#.into()),
        (api(h.chardev_change("nope", null()).await.unwrap_err()),
            r#"{"execute":"chardev-change","arguments":{"id":"nope","backend":{"type":"null","data":{}}}}"#.into()),
        (api(h.chardev_send_break("nope").await.unwrap_err()),
            r#"{"execute":"chardev-send-break","arguments":{"id":"nope"}}"#.into()),
        (api(h.ringbuf_read("nope", 0).await.unwrap_err()),
            r#"{"execute":"ringbuf-read","arguments":{"device":"nope","size":0,"format":"base64"}}"#.into()),
        (api(h.ringbuf_read("n", 1).await.unwrap_err()),
            r#"{"execute":"ringbuf-read","arguments":{"device":"n","size":1,"format":"base64"}}"#.into()),
        (api(h.ringbuf_read_text("r", -5).await.unwrap_err()),
            r#"{"execute":"ringbuf-read","arguments":{"device":"r","size":-5}}"#.into()),
        (api(h.ringbuf_write("n", b"x").await.unwrap_err()),
            r#"{"execute":"ringbuf-write","arguments":{"device":"n","data":"x"}}"#.into()),
        (api(h.device_add(Some("d"), Device::Echo { chardev: "nope".into() }).await.unwrap_err()),
            r#"{"execute":"device_add","arguments":{"driver":"echo","id":"d","chardev":"nope"}}"#.into()),
        (api(h.device_add(Some("e"), Device::Port { chardev: "n".into() }).await.unwrap_err()),
            r#"{"execute":"device_add","arguments":{"driver":"port","id":"e","chardev":"n"}}"#.into()),
        (api(h.device_add(Some("1bad"), Device::Port { chardev: "n".into() }).await.unwrap_err()),
            r#"{"execute":"device_add","arguments":{"driver":"port","id":"1bad","chardev":"n"}}"#.into()),
        (api(h.device_del("nope").await.unwrap_err()),
            r#"{"execute":"device_del","arguments":{"id":"nope"}}"#.into()),
        (api(h.port_set_open("e", true).await.unwrap_err()),
            r#"{"execute":"__org.chardevd_port-set-open","arguments":{"id":"e","open":true}}"#.into()),
        (api(h.monitor_add(None, "nope", false).await.unwrap_err()),
            r#"{"execute":"__org.chardevd_monitor-add","arguments":{"chardev":"nope"}}"#.into()),
        (api(h.monitor_del("nope").await.unwrap_err()),
            r#"{"execute":"__org.chardevd_monitor-del","arguments":{"id":"nope"}}"#.into()),
        (api(h.object_del("nope").await.unwrap_err()),
            r#"{"execute":"object-del","arguments":{"id":"nope"}}"#.into()),
        (api(h.object_add("1bad", ObjectProps::AuthzSimple { identity: "x".into() }).await.unwrap_err()),
            r#"{"execute":"object-add","arguments":{"qom-type":"authz-simple","id":"1bad","identity":"x"}}"#.into()),
        (api(h.yank(vec![YankInstance::Chardev { id: "n".into() }]).await.unwrap_err()),
            r#"{"execute":"yank","arguments":{"instances":[{"type":"chardev","id":"n"}]}}"#.into()),
        (api(h.input_send_event(Some("n"), vec![]).await.unwrap_err()),
            r#"{"execute":"input-send-event","arguments":{"device":"n","events":[]}}"#.into()),
        (api(h.input_send_event(None, vec![InputEvent::Key { qcode: "nokey".into(), down: true }]).await.unwrap_err()),
            r#"{"execute":"input-send-event","arguments":{"events":[{"type":"key","data":{"key":{"type":"qcode","data":"nokey"},"down":true}}]}}"#.into()),
        (api(h.send_key(&["ctrl", "nokey"]).await.unwrap_err()),
            r#"{"execute":"send-key","arguments":{"keys":[{"type":"qcode","data":"ctrl"},{"type":"qcode","data":"nokey"}]}}"#.into()),
        (api(h.screendump_text(None).await.unwrap_err()),
            r#"{"execute":"__org.chardevd_screendump-text"}"#.into()),
    ];
    for (typed, cmd) in cases {
        assert_eq!(typed, qmp(cmd.clone()).await, "{cmd}");
    }
    h.quit().await.unwrap();
    h.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_through_the_typed_api_with_history_clients_and_their_events() {
    use chardevd::backends::{ChardevCommon, ConsoleInput, Socket, SocketConsole};
    use chardevd::events::{ClientEvent, Event};
    use futures_util::SinkExt;
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("con.log");
    let h = runtime::spawn(Config::default()).unwrap();
    let mut events = h.events(16).await.unwrap();
    let console = Socket::tcp_server("127.0.0.1", 0).with_console(SocketConsole {
        max_clients: Some(2),
        history: Some(4096),
        input: Some(ConsoleInput::First),
        client_events: Some(true),
        ..SocketConsole::default()
    });
    let common = ChardevCommon {
        logfile: Some(log.to_str().unwrap().into()),
        logtimestamp: Some(true),
        logsize: Some(64 << 10),
        logbackups: Some(2),
        ..ChardevCommon::default()
    };
    h.chardev_add("con", ChardevBackend::new(console).with_common(common))
        .await
        .unwrap();
    let fe = h.attach("con").await.unwrap();
    let (_reader, mut writer, _events) = fe.split();
    writer.send(Bytes::from_static(b"before anyone\n")).await.unwrap();
    let port = listening_port(&h, "con").await;
    let mut a = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut got = [0u8; 14];
    tokio::time::timeout(Duration::from_secs(5), a.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"before anyone\n", "the history");
    let ev = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match ev.event {
        Event::ClientConnected(ClientEvent {
            id, client, clients, ..
        }) => {
            assert_eq!((id.as_str(), client, clients), ("con", 1, 1));
        }
        other => panic!("unexpected {other:?}"),
    }
    let clients = h.query_clients("con").await.unwrap();
    assert_eq!(clients.len(), 1);
    assert!(clients[0].writer);
    assert!(
        clients[0].address.starts_with("tcp:127.0.0.1:"),
        "{}",
        clients[0].address
    );
    h.client_disconnect("con", 1).await.unwrap();
    assert!(matches!(
        tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
            .event,
        Event::ClientDisconnected(ClientEvent {
            client: 1,
            clients: 0,
            ..
        })
    ));
    assert_eq!(
        h.client_set_writer("con", 7).await.unwrap_err().to_string(),
        "Chardev 'con' has no client 7"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.ends_with(" before anyone\n") && text.contains('T'), "{text:?}");
    h.shutdown();
    h.join();
}
