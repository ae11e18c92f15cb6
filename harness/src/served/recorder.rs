//! What happens to each request of a point as it completes.

use std::io::Write;
use std::time::Instant;

use inferbench_core::schema::{HttpResult, LoadDescription};
use inferbench_http::load::{Limits, Load};
use inferbench_http::point::{Completed, HttpAccumulator, RequestLogLine};

use super::{ServedError, SweepObserver, SAVE_EVERY};
use crate::vllm_export::VllmExport;

/// A point as it starts: its load and limits, the requests it plans (its
/// shard's part), its clock's start, its prompt stream, and how far a
/// search's probe may be extended.
pub(super) struct PointSetup {
    pub(super) load: Load,
    pub(super) limits: Limits,
    pub(super) first: Option<u64>,
    pub(super) start: Instant,
    pub(super) stream_index: u32,
    pub(super) extend_to: Option<u64>,
}

/// What a point does with each request as it completes: counts it, reports
/// it, adds it to the vLLM export, logs it (`--requests-log`) and saves the
/// run with the point so far every second. A write that fails is kept and
/// the point goes on: the run fails once the point is kept.
pub(super) struct PointRecorder<'a> {
    pub(super) acc: HttpAccumulator,
    pub(super) vllm: Option<VllmExport>,
    pub(super) description: &'a LoadDescription,
    /// The point's place in the result, as the request log names it.
    pub(super) point_index: usize,
    /// The extension running now (0: the point's first requests).
    pub(super) extension: u8,
    pub(super) last_save: Instant,
    pub(super) io_error: Option<ServedError>,
}

impl PointRecorder<'_> {
    pub(super) fn record(
        &mut self,
        completed: Completed,
        result: &HttpResult,
        log: &mut Option<Box<dyn Write>>,
        observer: &mut dyn SweepObserver,
    ) {
        let mut record = self.acc.add(completed);
        record.extension = (self.extension > 0).then_some(self.extension);
        observer.request_done(&record);
        if let Some(v) = self.vllm.as_mut() {
            v.add(&record);
        }
        if let (Some(log), None) = (log.as_mut(), self.io_error.as_ref()) {
            let line = RequestLogLine {
                point: self.point_index,
                record: &record,
            };
            let written = serde_json::to_writer(&mut *log, &line)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(log));
            if let Err(e) = written {
                self.io_error = Some(ServedError::RequestsLog(e));
            }
        }
        if self.last_save.elapsed() >= SAVE_EVERY && self.io_error.is_none() {
            let mut snapshot = result.clone();
            snapshot
                .points
                .push(self.acc.finish(self.description.clone(), false, 0));
            if let Err(e) = observer.save(&mut snapshot, false) {
                self.io_error = Some(ServedError::Save(e));
            }
            if let Some(log) = log.as_mut() {
                let _ = log.flush();
            }
            self.last_save = Instant::now();
        }
    }
}
