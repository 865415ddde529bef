//! A scripted DSP counterparty, like the official TCK: it receives what caap sends (validating every body
//! against the 2025-1 schemas), answers with acknowledgements, and lets a test send messages to caap.

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use crate::dsp_schema::{DspSchemas, Shared};
use crate::support::{Server, TOKEN, request};

/// The peer's participant id, as caap's token table names it.
pub const PEER_ID: &str = "did:web:peer.example";
pub const CONTEXT: &str = "https://w3id.org/dspace/2025/1/context.jsonld";

/// One message caap sent the peer.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub body: Value,
    pub authorization: Option<String>,
    /// Schema problems of the body, if any (asserted empty by [`Peer::next`]).
    pub schema_errors: Vec<String>,
}

#[derive(Default)]
struct Behaviour {
    /// Answer this many requests with 503 before acknowledging.
    fail_next: usize,
    /// Answer every request with 503.
    always_fail: bool,
    /// Wait this long before answering.
    delay: Duration,
}

pub struct Peer {
    pub base: String,
    rx: Mutex<mpsc::Receiver<Received>>,
    behaviour: Arc<Mutex<Behaviour>>,
    pub schemas: Option<Arc<DspSchemas>>,
}

pub fn schema_for(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "ContractRequestMessage" => "negotiation/contract-request-message-schema.json",
        "ContractOfferMessage" => "negotiation/contract-offer-message-schema.json",
        "ContractAgreementMessage" => "negotiation/contract-agreement-message-schema.json",
        "ContractAgreementVerificationMessage" => {
            "negotiation/contract-agreement-verification-message-schema.json"
        }
        "ContractNegotiationEventMessage" => {
            "negotiation/contract-negotiation-event-message-schema.json"
        }
        "ContractNegotiationTerminationMessage" => {
            "negotiation/contract-negotiation-termination-message-schema.json"
        }
        "ContractNegotiation" => "negotiation/contract-negotiation-schema.json",
        "ContractNegotiationError" => "negotiation/contract-negotiation-error-schema.json",
        "TransferRequestMessage" => "transfer/transfer-request-message-schema.json",
        "TransferStartMessage" => "transfer/transfer-start-message-schema.json",
        "TransferSuspensionMessage" => "transfer/transfer-suspension-message-schema.json",
        "TransferCompletionMessage" => "transfer/transfer-completion-message-schema.json",
        "TransferTerminationMessage" => "transfer/transfer-termination-message-schema.json",
        "TransferProcess" => "transfer/transfer-process-schema.json",
        "TransferError" => "transfer/transfer-error-schema.json",
        _ => return None,
    })
}

/// Validates a DSP body by its `@type` (when the official schemas are at hand).
pub fn validate(schemas: Option<&DspSchemas>, body: &Value) {
    let Some(s) = schemas else { return };
    let kind = body["@type"].as_str().unwrap_or_default();
    let schema = schema_for(kind).unwrap_or_else(|| panic!("no schema for @type {kind}: {body}"));
    s.assert_valid(schema, body);
}

pub fn schemas() -> Option<Arc<DspSchemas>> {
    match crate::dsp_schema::load() {
        Shared::Found(s) => Some(Arc::new(s)),
        Shared::Skipped(why) => {
            println!("SKIPPED: schema validation of negotiation messages ({why})");
            None
        }
    }
}

/// Serves every request with `handler` on a fresh loopback port, in its own thread; returns the address.
pub fn serve<F, Fut>(handler: F) -> std::net::SocketAddr
where
    F: Fn(HttpRequest, web::Bytes) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = HttpResponse> + 'static,
{
    let (addr_tx, addr_rx) = mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                let handler = handler.clone();
                App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                    handler(req, body)
                }))
            })
            .workers(2)
            .bind("127.0.0.1:0")
            .unwrap();
            addr_tx.send(server.addrs()[0]).unwrap();
            server.run().await.unwrap();
        });
    });
    addr_rx.recv_timeout(Duration::from_secs(10)).unwrap()
}

impl Peer {
    pub fn start() -> Peer {
        let (tx, rx) = mpsc::channel::<Received>();
        let behaviour = Arc::new(Mutex::new(Behaviour::default()));
        let schemas = schemas();
        let (b, s) = (behaviour.clone(), schemas.clone());
        let tx = Arc::new(Mutex::new(tx));
        let addr = serve(move |req, body| answer(req, body, tx.clone(), b.clone(), s.clone()));
        Peer {
            base: format!("http://{addr}/dsp"),
            rx: Mutex::new(rx),
            behaviour,
            schemas,
        }
    }

    pub fn fail_next(&self, n: usize) {
        self.behaviour.lock().unwrap().fail_next = n;
    }

    pub fn always_fail(&self, yes: bool) {
        self.behaviour.lock().unwrap().always_fail = yes;
    }

    pub fn delay(&self, d: Duration) {
        self.behaviour.lock().unwrap().delay = d;
    }

    /// The next message caap sent, within 10 s.
    pub fn next(&self) -> Received {
        let r = self
            .rx
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(10))
            .expect("caap sent nothing within 10 s");
        assert!(
            r.schema_errors.is_empty(),
            "caap sent a body that fails the official schema: {:?}\n{}",
            r.schema_errors,
            r.body
        );
        r
    }

    /// The next message, which must have this `@type`.
    pub fn expect(&self, kind: &str) -> Received {
        let r = self.next();
        assert_eq!(
            r.body["@type"], kind,
            "expected a {kind} at the peer, got {:?}",
            r
        );
        r
    }

    /// Every message received so far (without waiting).
    pub fn drain(&self) -> Vec<Received> {
        self.rx.lock().unwrap().try_iter().collect()
    }

    /// Nothing more arrives within `d`.
    pub fn quiet_for(&self, d: Duration) {
        if let Ok(r) = self.rx.lock().unwrap().recv_timeout(d) {
            panic!("unexpected message at the peer: {r:?}");
        }
    }

    /// Posts a DSP message to caap as the peer; the response body (if any) is validated.
    pub fn post(&self, caap: &Server, path: &str, body: &Value) -> crate::support::Response {
        validate(self.schemas.as_deref(), body);
        let r = request(
            "POST",
            &format!("{}/dsp/{}", caap.dsp, path.trim_start_matches('/')),
            Some(&format!("Bearer {TOKEN}")),
            Some(&body.to_string()),
            "application/json",
        );
        if r.body.is_object() {
            validate(self.schemas.as_deref(), &r.body);
        }
        r
    }

    /// caap's view of a negotiation over DSP (`GET <base>/negotiations/:pid`), validated.
    pub fn state(&self, caap: &Server, pid: &str) -> String {
        self.process_state(caap, "negotiations", pid)
    }

    /// caap's view of a negotiation or transfer (`kind`: `negotiations` or `transfers`) over DSP, validated.
    pub fn process_state(&self, caap: &Server, kind: &str, pid: &str) -> String {
        let r = request(
            "GET",
            &format!("{}/dsp/{kind}/{pid}", caap.dsp),
            Some(&format!("Bearer {TOKEN}")),
            None,
            "application/json",
        );
        assert_eq!(r.status, 200, "{}", r.body);
        validate(self.schemas.as_deref(), &r.body);
        r.body["state"].as_str().unwrap().to_owned()
    }
}

async fn answer(
    req: HttpRequest,
    body: web::Bytes,
    tx: Arc<Mutex<mpsc::Sender<Received>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    schemas: Option<Arc<DspSchemas>>,
) -> HttpResponse {
    let (fail, delay) = {
        let mut b = behaviour.lock().unwrap();
        let fail = b.always_fail || b.fail_next > 0;
        if b.fail_next > 0 {
            b.fail_next -= 1;
        }
        (fail, b.delay)
    };
    if !delay.is_zero() {
        actix_web::rt::time::sleep(delay).await;
    }
    if fail {
        return HttpResponse::ServiceUnavailable().body("the peer is down for a test");
    }
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let schema_errors = match (
        schemas.as_deref(),
        schema_for(value["@type"].as_str().unwrap_or_default()),
    ) {
        (Some(s), Some(schema)) => s.validate(schema, &value).err().unwrap_or_default(),
        (Some(_), None) => vec![format!("no schema for this @type: {value}")],
        (None, _) => Vec::new(),
    };
    let path = req.path().to_owned();
    let received = Received {
        path: path.clone(),
        body: value.clone(),
        authorization: req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        schema_errors,
    };
    let _ = tx.lock().unwrap().send(received);
    if path.ends_with("/negotiations/request") {
        let consumer = value["consumerPid"].as_str().unwrap_or_default();
        return HttpResponse::Created().json(json!({
            "@context": [CONTEXT], "@type": "ContractNegotiation",
            "providerPid": format!("urn:uuid:peer-{}", consumer.trim_start_matches("urn:uuid:")),
            "consumerPid": consumer, "state": "REQUESTED"
        }));
    }
    if path.ends_with("/transfers/request") {
        let consumer = value["consumerPid"].as_str().unwrap_or_default();
        return HttpResponse::Created().json(json!({
            "@context": [CONTEXT], "@type": "TransferProcess",
            "providerPid": format!("urn:uuid:peer-{}", consumer.trim_start_matches("urn:uuid:")),
            "consumerPid": consumer, "state": "REQUESTED"
        }));
    }
    HttpResponse::Ok().finish()
}
