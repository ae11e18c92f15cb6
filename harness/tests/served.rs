//! The served runner at the library level, without the binary: a sweep, a
//! resume, the limits of a point, an interrupt and a failed warm-up,
//! against the scripted server on a real socket.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a panic is a failed test"
)]

mod common;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use inferbench_core::schema::{
    AnyResult, HttpPoint, HttpResult, Provenance, ResultWriter, RunStatus,
};
use inferbench_core::spec::{HttpSpec, PerLoad, RoundsSpec, Spec};
use inferbench_harness::http::record::RequestRecord;
use inferbench_harness::rounds::RoundsResult;
use inferbench_harness::served::rounds::{self, run_rounds, RoundsDriver, RoundsError};
use inferbench_harness::served::{
    self, ConnectInputs, Finished, Ready, Resume, SaveError, ServedError, StartInputs,
    SweepObserver,
};
use inferbench_test_support::mock::{Fault, MockServer, Script};

/// Everything the runner reported, and the result as last saved.
#[derive(Default)]
struct Recorder {
    warnings: Vec<String>,
    /// Each point's label and planned requests, as it started.
    started: Vec<(String, Option<u64>)>,
    requests: u64,
    extended: u64,
    ended: u32,
    /// Each kept point's label and whether it came from the resumed file.
    kept: Vec<(String, bool)>,
    /// Each save: whole, and the points the result held.
    saves: Vec<(bool, usize)>,
    last_saved: Option<HttpResult>,
}

impl SweepObserver for Recorder {
    fn warning(&mut self, message: &str) {
        self.warnings.push(message.to_string());
    }
    fn point_started(&mut self, label: &str, planned: Option<u64>) {
        self.started.push((label.to_string(), planned));
    }
    fn request_done(&mut self, _record: &RequestRecord) {
        self.requests += 1;
    }
    fn point_extended(&mut self, more: u64) {
        self.extended += more;
    }
    fn point_ended(&mut self) {
        self.ended += 1;
    }
    fn point_kept(&mut self, point: &HttpPoint, resumed: bool) {
        self.kept.push((point.load.label(), resumed));
    }
    fn save(&mut self, result: &mut HttpResult, whole: bool) -> Result<(), SaveError> {
        self.saves.push((whole, result.points.len()));
        self.last_saved = Some(result.clone());
        Ok(())
    }
}

fn server() -> MockServer {
    MockServer::start(|_, _| Script {
        ttft: Duration::from_millis(2),
        itl: Duration::from_millis(1),
        tokens: 4,
        ..Script::default()
    })
    .unwrap()
}

/// Two closed-loop points of 6 requests, one warm-up each, no telemetry.
fn spec(server: &MockServer) -> HttpSpec {
    HttpSpec {
        url: server.url(),
        concurrency: Some(vec![1, 2]),
        num_requests: Some(PerLoad::All(6)),
        warmup: 1,
        workload: "fixed:16:4".into(),
        seed: 7,
        prompt_seed: Some(11),
        timeout: Duration::from_secs(5),
        telemetry: false,
        ..HttpSpec::default()
    }
}

fn provenance(spec: &HttpSpec) -> Provenance {
    Provenance {
        tool: common::tool_info(),
        engine: served::client_engine_info(spec),
        host: inferbench_harness::host::host_info(),
        model: None,
        server: None,
        timestamp: served::now_rfc3339(),
    }
}

/// Runs `spec` as the binary does, the first save included.
fn run(
    spec: &HttpSpec,
    resume: Option<(Resume, PathBuf)>,
    interrupt: Arc<AtomicBool>,
) -> (Result<Finished, ServedError>, Recorder) {
    let mut recorder = Recorder::default();
    let inputs = ConnectInputs {
        resumed_prompt_seed: resume.as_ref().and_then(|(r, _)| r.prompt_seed),
        ..ConnectInputs::default()
    };
    let started = Ready::connect(spec, inputs, &mut recorder).and_then(|ready| {
        ready.start(
            provenance(spec),
            StartInputs {
                resume,
                telemetry: None,
                export_vllm: None,
                interrupt,
                clock: None,
            },
        )
    });
    let mut sweep = match started {
        Ok(sweep) => sweep,
        Err(e) => return (Err(e), recorder),
    };
    recorder.save(sweep.result_mut(), true).unwrap();
    let finished = sweep
        .run(&mut recorder)
        .and_then(|()| sweep.finish(&mut recorder));
    (finished, recorder)
}

fn not_interrupted() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

#[test]
fn a_sweep_measures_every_load_in_turn_and_saves_after_each_point() {
    let server = server();
    let spec = spec(&server);
    let (finished, seen) = run(&spec, None, not_interrupted());
    let finished = finished.unwrap();
    let result = &finished.result;
    assert_eq!(result.status, RunStatus::Complete);
    assert!(!result.partial);
    assert!(!finished.interrupted);
    assert_eq!(finished.failed_requests, 0);
    let loads: Vec<String> = result.points.iter().map(|p| p.load.label()).collect();
    assert_eq!(loads, ["c=1", "c=2"]);
    for point in &result.points {
        assert!(point.complete);
        assert_eq!(point.requests.total, 6);
        assert_eq!(point.requests.succeeded, 6);
        assert_eq!(point.num_requests_planned, Some(6));
    }
    // Every point its own prompt stream.
    let streams: Vec<Option<u32>> = result.points.iter().map(|p| p.prompt_stream).collect();
    assert_eq!(streams, [Some(0), Some(1)]);
    // What the observer saw: each point started, its requests, its row.
    assert_eq!(
        seen.started,
        [("c=1".to_string(), Some(6)), ("c=2".to_string(), Some(6))]
    );
    assert_eq!(seen.requests, 12);
    assert_eq!(seen.ended, 2);
    assert_eq!(
        seen.kept,
        [("c=1".to_string(), false), ("c=2".to_string(), false)]
    );
    // Saved whole at the start, after each point and at the end.
    let whole: Vec<usize> = seen.saves.iter().filter(|s| s.0).map(|s| s.1).collect();
    assert_eq!(whole, [0, 1, 2, 2]);
    assert_eq!(
        seen.last_saved.as_ref().map(|r| r.status),
        Some(RunStatus::Complete)
    );
    // The server saw the measured requests and one warm-up a point.
    assert_eq!(server.requests(), 12 + 2);
    assert_eq!(result.settings.spec, Some(Spec::Http(spec.clone())));
    assert_eq!(result.settings.num_requests, Some(6));
}

#[test]
fn each_point_runs_to_its_own_limit() {
    let server = server();
    let per_load = HttpSpec {
        num_requests: Some(PerLoad::Each(vec![3, 5])),
        ..spec(&server)
    };
    let (finished, seen) = run(&per_load, None, not_interrupted());
    let result = finished.unwrap().result;
    let totals: Vec<u64> = result.points.iter().map(|p| p.requests.total).collect();
    assert_eq!(totals, [3, 5]);
    assert_eq!(
        result.settings.num_requests_per_load.as_deref(),
        Some("3,5")
    );
    assert_eq!(seen.started[1].1, Some(5));

    // A multiple of the load: 2 requests per request in flight.
    let times_load = HttpSpec {
        num_requests: Some(PerLoad::TimesLoad(2.0)),
        ..spec(&server)
    };
    let result = run(&times_load, None, not_interrupted()).0.unwrap().result;
    let totals: Vec<u64> = result.points.iter().map(|p| p.requests.total).collect();
    assert_eq!(totals, [2, 4]);

    // A time limit instead of a count: the point ends when it runs out, its
    // planned duration recorded and no count planned.
    let timed = HttpSpec {
        concurrency: Some(vec![1]),
        num_requests: None,
        duration: Some(PerLoad::All(Duration::from_millis(300))),
        ..spec(&server)
    };
    let (finished, seen) = run(&timed, None, not_interrupted());
    let point = &finished.unwrap().result.points[0];
    assert!(point.complete);
    assert!(point.requests.total >= 1);
    assert_eq!(point.duration_planned_s, Some(0.3));
    assert_eq!(point.num_requests_planned, None);
    assert_eq!(seen.started[0].1, None);
}

#[test]
fn a_resumed_sweep_keeps_the_finished_points_and_measures_only_the_rest() {
    let server = server();
    let spec = spec(&server);
    let first = run(&spec, None, not_interrupted()).0.unwrap().result;
    // The file a run cut short after its first point would have left.
    let mut cut = first.clone();
    cut.points.truncate(1);
    cut.status = RunStatus::Interrupted;
    cut.partial = true;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.json");
    ResultWriter::new(&path).write(&cut).unwrap();

    let before = server.requests();
    let resume = Resume::read(&path).unwrap();
    let (finished, seen) = run(&spec, Some((resume, path.clone())), not_interrupted());
    let result = finished.unwrap().result;
    assert_eq!(result.status, RunStatus::Complete);
    assert_eq!(result.points.len(), 2);
    // The file's point, unchanged.
    let Ok(AnyResult::Http(file)) = AnyResult::read(&path) else {
        panic!("{} does not read back", path.display())
    };
    assert_eq!(result.points[0], file.points[0]);
    assert_eq!(result.points[0].requests, first.points[0].requests);
    assert_eq!(
        seen.kept,
        [("c=1".to_string(), true), ("c=2".to_string(), false)]
    );
    // Only the second point was sent: its warm-up and its requests, on a
    // prompt stream the file's points cannot have used.
    assert_eq!(server.requests() - before, 1 + 6);
    assert_eq!(seen.started.len(), 1);
    assert!(result.points[1].prompt_stream >= Some(2));
    assert!(result.notes.iter().any(|n| n.starts_with("resumed from")));

    // Other loads than the file's are refused, naming the file.
    let other = HttpSpec {
        concurrency: Some(vec![2, 4]),
        ..spec.clone()
    };
    let resume = Resume::read(&path).unwrap();
    let (refused, _) = run(&other, Some((resume, path.clone())), not_interrupted());
    match refused {
        Err(ServedError::Usage(message)) => {
            assert!(message.contains("--resume"), "{message}");
            assert!(message.contains("cut.json"), "{message}");
        }
        Err(e) => panic!("expected a usage error, got {e}"),
        Ok(_) => panic!("expected a usage error, got a run"),
    }
}

#[test]
fn an_interrupted_sweep_ends_partial_and_says_so() {
    let server = server();
    let (finished, seen) = run(&spec(&server), None, Arc::new(AtomicBool::new(true)));
    let finished = finished.unwrap();
    assert!(finished.interrupted);
    assert_eq!(finished.result.status, RunStatus::Interrupted);
    assert!(finished.result.partial);
    assert!(finished.result.points.is_empty());
    assert!(seen.started.is_empty());
    assert_eq!(server.requests(), 0);
}

#[test]
fn a_warm_up_that_only_fails_stops_the_run_with_the_cause() {
    let server = MockServer::start(|_, _| Script {
        fault: Some(Fault::Status(503)),
        ..Script::default()
    })
    .unwrap();
    let (finished, seen) = run(&spec(&server), None, not_interrupted());
    match finished {
        Err(ServedError::WarmupFailed { label, message }) => {
            assert_eq!(label, "c=1");
            assert!(message.contains("503"), "{message}");
        }
        Err(e) => panic!("expected a failed warm-up, got {e}"),
        Ok(_) => panic!("expected a failed warm-up, got a finished run"),
    }
    assert!(seen.started.is_empty());
}

/// Runs each round's sweep in the library, as the binary does minus the
/// files.
struct RoundsRecorder {
    saves: Vec<RunStatus>,
    last_saved: Option<RoundsResult>,
}

impl RoundsDriver for RoundsRecorder {
    type Error = ServedError;

    fn file_of(&self, round: u32, target: usize) -> String {
        format!("r{round}.t{target}.json")
    }

    fn sweep(
        &mut self,
        _round: u32,
        _target: usize,
        spec: &HttpSpec,
    ) -> Result<HttpResult, ServedError> {
        run(spec, None, not_interrupted()).0.map(|f| f.result)
    }

    fn save(&mut self, result: &mut RoundsResult) -> Result<(), SaveError> {
        self.saves.push(result.status);
        self.last_saved = Some(result.clone());
        Ok(())
    }
}

#[test]
fn rounds_alternate_the_targets_on_one_prompt_seed_a_round() {
    let (a, b) = (server(), server());
    let rounds = RoundsSpec {
        targets: vec![a.url(), b.url()],
        rounds: 2,
        http: HttpSpec {
            concurrency: Some(vec![1]),
            ..spec(&a)
        },
    };
    let mut driver = RoundsRecorder {
        saves: Vec::new(),
        last_saved: None,
    };
    let result = run_rounds(&rounds, 99, &AtomicBool::new(false), &mut driver).unwrap();
    assert_eq!(result.status, RunStatus::Complete);
    assert!(!result.partial);
    let order: Vec<(u32, usize, &str)> = result
        .order
        .iter()
        .map(|e| (e.round, e.target, e.file.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            (0, 0, "r0.t0.json"),
            (0, 1, "r0.t1.json"),
            (1, 0, "r1.t0.json"),
            (1, 1, "r1.t1.json")
        ]
    );
    // Each target ran every round against its own server.
    assert_eq!(a.requests(), 2 * (6 + 1));
    assert_eq!(b.requests(), 2 * (6 + 1));
    // One prompt seed a round, the same for both targets, new each round.
    let seed = |t: usize, r: usize| result.targets[t].rounds[r].settings.prompt_seed;
    assert_eq!(seed(0, 0), seed(1, 0));
    assert_eq!(seed(0, 1), seed(1, 1));
    assert_ne!(seed(0, 0), seed(0, 1));
    assert_eq!(
        seed(0, 1),
        Some(rounds::round_seed(99, 1)),
        "the round's seed as the settings list it"
    );
    assert!(!result.summary.is_empty());
    // Saved at the start, after every sweep and at the end.
    assert_eq!(driver.saves.len(), 1 + 4 + 1);
    assert_eq!(driver.saves.last(), Some(&RunStatus::Complete));

    // A target that cannot be reached fails the rounds in its first round,
    // the file saved failed with the cause.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let failing = RoundsSpec {
        targets: vec![a.url(), closed.clone()],
        ..rounds
    };
    let mut driver = RoundsRecorder {
        saves: Vec::new(),
        last_saved: None,
    };
    match run_rounds(&failing, 99, &AtomicBool::new(false), &mut driver) {
        Err(RoundsError::Sweep { round, url, .. }) => {
            assert_eq!((round, url), (0, closed));
        }
        Err(e) => panic!("expected a failed sweep, got {e}"),
        Ok(_) => panic!("expected a failed sweep, got a result"),
    }
    let saved = driver.last_saved.unwrap();
    assert_eq!(saved.status, RunStatus::Failed);
    assert!(saved
        .error
        .is_some_and(|e| e.contains("connection refused")));
    assert_eq!(saved.targets[0].rounds.len(), 1);
}
