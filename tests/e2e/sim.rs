//! The built-in sensor simulator, read through a real connector: polled readings, the NGSI-LD query
//! and subscriptions, server-sent events resumed with `Last-Event-ID`, and large files.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::support::{Node, Server, request};

fn get(server: &Server, path: &str) -> crate::support::Response {
    request("GET", &format!("{}{path}", server.dsp), None, None, "")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Reads `n` events from an SSE endpoint: (id, data) pairs.
fn read_events(url: &str, last_event_id: Option<u64>, n: usize) -> Vec<(u64, Value)> {
    runtime().block_on(async {
        let mut req = reqwest::Client::new().get(url);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        assert_eq!(res.headers()["x-caap-simulator"], "true");
        let mut body = res.bytes_stream();
        let mut buffer = String::new();
        let mut events = Vec::new();
        let read = async {
            while events.len() < n {
                let chunk = body.next().await.unwrap().unwrap();
                buffer.push_str(std::str::from_utf8(&chunk).unwrap());
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    let mut id = None;
                    let mut data = None;
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("id: ") {
                            id = Some(v.parse::<u64>().unwrap());
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            data = Some(serde_json::from_str::<Value>(v).unwrap());
                        }
                    }
                    if let (Some(id), Some(data)) = (id, data) {
                        events.push((id, data));
                    }
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), read)
            .await
            .expect("events within 30 s");
        events.truncate(n);
        events
    })
}

#[test]
fn the_simulator_serves_readings_streams_queries_and_files() {
    let node = Node::init_with(
        "Lund",
        &[
            ("simulator.enabled", "true".into()),
            ("simulator.interval_ms", "100".into()),
        ],
    );
    let server = node.start(&[]);

    let r = get(&server, "/sim");
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-caap-simulator"], "true");
    assert!(
        r.body["description"]
            .as_str()
            .unwrap()
            .contains("simulator")
    );
    assert_eq!(r.body["intervalMs"], 100);

    // Polled: the latest reading, or a given one (the same every time).
    let r = get(&server, "/sim/lund/air-quality/stortorget");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["x-caap-simulator"], "true");
    assert_eq!(r.headers["content-type"], "application/ld+json");
    assert!(r.headers.contains_key("x-caap-simulator-sequence"));
    assert_eq!(r.body["type"], "AirQualityObserved");
    assert!(
        r.body["@context"][0]
            .as_str()
            .unwrap()
            .contains("smart-data-models")
    );
    for attr in ["no2", "pm10", "pm25", "temperature"] {
        assert!(r.body[attr]["value"].is_number(), "{attr}: {}", r.body);
    }
    assert!(
        r.body["description"]["value"]
            .as_str()
            .unwrap()
            .contains("Simulated")
    );
    let a = get(&server, "/sim/lund/air-quality/stortorget?seq=1234");
    let b = get(&server, "/sim/lund/air-quality/stortorget?seq=1234");
    assert_eq!(a.body, b.body);
    assert_eq!(
        a.body["dateObserved"]["value"]["@value"],
        "1970-01-01T00:02:03.400Z"
    );
    let r = get(&server, "/sim/lund/parking/p-hus-fargaren");
    assert_eq!(r.body["type"], "OffStreetParking");
    assert_eq!(r.body["totalSpotNumber"]["value"], 420);
    let r = get(&server, "/sim/Lund/parking/x");
    assert_eq!(r.status, 404);
    assert_eq!(r.headers["x-caap-simulator"], "true");
    let r = get(&server, "/sim/nothing/here");
    assert_eq!(r.status, 404);
    assert_eq!(r.headers["x-caap-simulator"], "true");

    // NGSI-LD style query.
    let r = get(&server, "/sim/ngsi-ld/v1/entities?type=AirQualityObserved");
    assert_eq!(r.status, 200);
    let all = r.body.as_array().unwrap();
    assert_eq!(all.len(), 8, "{}", r.body);
    assert!(all.iter().all(|e| e["type"] == "AirQualityObserved"));
    let r = get(
        &server,
        "/sim/ngsi-ld/v1/entities?type=AirQualityObserved&q=no2%3E%3D0&limit=3",
    );
    assert_eq!(r.body.as_array().unwrap().len(), 3, "{}", r.body);
    let r = get(&server, "/sim/ngsi-ld/v1/entities?type=OffStreetParking");
    assert_eq!(r.body.as_array().unwrap().len(), 6);
    let r = get(
        &server,
        "/sim/ngsi-ld/v1/entities?type=AirQualityObserved&q=no2~1",
    );
    assert_eq!(r.status, 400);
    let r = get(&server, "/sim/ngsi-ld/v1/entities");
    assert_eq!(r.status, 400);

    // SSE: three events, then resume after the last one: nothing lost, nothing twice.
    let url = format!("{}/sim/lund/air-quality/stortorget/stream", server.dsp);
    let first = read_events(&url, None, 3);
    let ids: Vec<u64> = first.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [ids[0], ids[0] + 1, ids[0] + 2]);
    assert!(first.iter().all(|(_, e)| e["type"] == "AirQualityObserved"));
    // Let a few readings go by while disconnected.
    std::thread::sleep(Duration::from_millis(350));
    let resumed = read_events(&url, Some(ids[2]), 3);
    let resumed_ids: Vec<u64> = resumed.iter().map(|(id, _)| *id).collect();
    assert_eq!(resumed_ids, [ids[2] + 1, ids[2] + 2, ids[2] + 3]);
    // Each event is the polled reading of the same sequence number.
    let polled = get(
        &server,
        &format!("/sim/lund/air-quality/stortorget?seq={}", resumed_ids[0]),
    );
    assert_eq!(polled.body, resumed[0].1);

    // Large file: 64 MiB, streamed, counted and checked against the pattern.
    let size: u64 = 64 << 20;
    let block = caap_connector::sim::data::byte_block(caap_connector::sim::BLOCK);
    let (length, counted) = runtime().block_on(async {
        let res = reqwest::get(format!("{}/sim/files/bytes?size={size}", server.dsp))
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["x-caap-simulator"], "true");
        let length = res.content_length();
        let mut stream = res.bytes_stream();
        let mut counted = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap();
            for (i, b) in chunk.iter().enumerate() {
                let at = (counted as usize + i) % block.len();
                assert_eq!(*b, block[at], "byte {}", counted as usize + i);
            }
            counted += chunk.len() as u64;
        }
        (length, counted)
    });
    assert_eq!(length, Some(size));
    assert_eq!(counted, size);
    let r = get(&server, "/sim/files/bytes?size=lots");
    assert_eq!(r.status, 400);

    // Generated datasets.
    let r = get(&server, "/sim/files/air-quality.csv?rows=20");
    assert_eq!(r.status, 200);
    let csv = r.body.as_str().unwrap();
    assert!(
        csv.starts_with("city,station,dateObserved,no2,pm10,pm25,temperature\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 21);
    assert_eq!(
        get(&server, "/sim/files/air-quality.csv?rows=20").body,
        r.body
    );
    let r = get(&server, "/sim/files/parking.json?rows=5");
    assert_eq!(r.body.as_array().unwrap().len(), 5, "{}", r.body);
    assert_eq!(r.body[0]["type"], "OffStreetParking");
    let r = get(&server, "/sim/files/weather.csv");
    assert_eq!(r.status, 404);

    // A subscription sends notifications until it is deleted.
    let receiver = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = receiver.local_addr().unwrap().port();
    let r = request(
        "POST",
        &format!("{}/sim/ngsi-ld/v1/subscriptions", server.dsp),
        None,
        Some(
            &json!({
                "type": "Subscription",
                "entities": [{"type": "AirQualityObserved"}],
                "q": "no2>=0",
                "notification": {"endpoint": {"uri": format!("http://127.0.0.1:{port}/notify")}}
            })
            .to_string(),
        ),
        "application/json",
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let location = r.headers["location"].to_str().unwrap().to_owned();
    let (mut conn, _) = receiver.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut length = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).unwrap();
    conn.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
        .unwrap();
    let notification: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(notification["type"], "Notification");
    assert_eq!(notification["data"].as_array().unwrap().len(), 8);
    let r = request(
        "DELETE",
        &format!("{}{location}", server.dsp),
        None,
        None,
        "",
    );
    assert_eq!(r.status, 204);
    let r = get(&server, "/sim/ngsi-ld/v1/subscriptions");
    assert_eq!(r.body, json!([]));
    assert!(server.stop().success());
}

#[test]
fn the_simulator_is_off_unless_enabled() {
    let node = Node::init("Lund", "");
    let server = node.start(&[]);
    let r = get(&server, "/sim/lund/air-quality/stortorget");
    assert_eq!(r.status, 404);
    assert!(!r.headers.contains_key("x-caap-simulator"));
    assert!(server.stop().success());
}
