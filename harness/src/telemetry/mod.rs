//! Background telemetry: a thread that samples the host (CPU, memory), this
//! process (CPU, resident memory) and, through a [`GpuProbe`](crate::gpu::GpuProbe), the GPUs, at a
//! fixed interval while a measurement point runs, and summarises what it saw
//! as mean and max per metric.
//!
//! Definitions (each sample covers the time since the previous one):
//! - `host_cpu_percent`: busy time of all logical CPUs over their total time,
//!   0–100 (100 = every core busy). Linux only, from `/proc/stat`; absent
//!   elsewhere. sysinfo's own figure is not used because sysinfo ignores CPU
//!   refreshes closer than 200 ms apart, which at 10 Hz would repeat stale
//!   values.
//! - `process_cpu_percent`: this process's user + system CPU time over wall
//!   time, 0–100 × logical cores (as `top` shows it), from sysinfo's
//!   accumulated CPU time, counted in 10 ms ticks (so noisy over one 100 ms
//!   sample, capped at 100 × cores, unbiased in the mean). It includes the
//!   sampler thread itself (reading a few `/proc` files per sample).
//! - `host_memory_percent`: used memory (total − available) over total, 0–100.
//! - `process_rss_bytes`: this process's resident set size.
//! - GPU metrics: whatever the probe reports for each device index, at the
//!   moment of the sample (utilisation is the driver's own average over its
//!   sampling window).
//!
//! The CPU figures need a start: the thread takes a baseline reading when it
//! starts, then the first sample one interval later. When the sampler is
//! stopped more than half an interval after the last sample, a last sample
//! covers that remainder, so a point shorter than one interval still gets
//! one sample if it lasts at least half an interval.
//!
//! A metric some samples lack (a driver that reports power only sometimes)
//! is averaged over the samples that have it. A metric no sample had is
//! absent from the summary, never zero; with no GPU probe there is no `gpus`
//! field at all.

mod aggregation;
pub mod energy;
mod host;
mod sampler;

pub use aggregation::Accumulator;
pub use host::HostSample;
pub use sampler::{Sampler, TelemetryConfig, TelemetryError, POWERCAP};

/// Samples the machine around each measured point (host, process, GPUs).
pub trait PointSampler {
    /// A point starts: sampling begins.
    fn start(&mut self);
    /// The point is over: what was sampled, if anything.
    fn stop(&mut self) -> Option<crate::schema::telemetry::TelemetrySummary>;
}

#[cfg(test)]
mod tests {
    use super::aggregation::Gauge;
    use super::host::{cpu_percent_between, parse_proc_stat};
    use super::*;
    use crate::gpu::{GpuProbe, GpuSample};
    use crate::schema::telemetry::{GpuDevice, MeanMax, TelemetrySummary};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    fn busy(for_: Duration) {
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < for_ {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }

    #[test]
    fn host_only_sampling_reports_plausible_host_metrics_and_no_gpus() {
        let sampler = Sampler::start(TelemetryConfig::default(), None).unwrap();
        busy(Duration::from_millis(300));
        let s = sampler.stop().unwrap();
        assert!(s.samples >= 1, "{s:?}");
        assert!(s.logical_cores >= 1);
        let cores = f64::from(s.logical_cores);
        assert_eq!(s.interval_ms, 100.0);
        assert!(s.gpus.is_none());
        let mem = s.host_memory_percent.expect("host memory");
        assert!(
            mem.mean > 0.0 && mem.max <= 100.0 && mem.mean <= mem.max,
            "{mem:?}"
        );
        let pcpu = s.process_cpu_percent.expect("process cpu");
        assert!(pcpu.mean >= 0.0 && pcpu.max <= 100.0 * cores, "{pcpu:?}");
        // This thread was busy the whole time: the process used some CPU.
        assert!(pcpu.max > 0.0, "{pcpu:?}");
        let rss = s.process_rss_bytes.expect("rss");
        assert!(rss.mean > 0.0 && rss.mean <= rss.max, "{rss:?}");
        if cfg!(target_os = "linux") {
            let hcpu = s.host_cpu_percent.expect("host cpu on Linux");
            assert!((0.0..=100.0).contains(&hcpu.mean), "{hcpu:?}");
            assert!((0.0..=100.0).contains(&hcpu.max), "{hcpu:?}");
        }
        let json = serde_json::to_value(&s).unwrap();
        assert!(json.get("gpus").is_none(), "{json}");
        let back: TelemetrySummary = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn zero_interval_is_refused() {
        let err = Sampler::start(
            TelemetryConfig {
                interval: Duration::ZERO,
            },
            None,
        )
        .err()
        .unwrap();
        assert!(matches!(err, TelemetryError::Interval(_)), "{err}");
    }

    #[test]
    fn gpu_aggregation_is_exact_per_index() {
        let devices = [
            GpuDevice {
                index: 0,
                name: "A".into(),
                uuid: None,
                memory_total_bytes: Some(80),
            },
            GpuDevice {
                index: 1,
                name: "B".into(),
                uuid: None,
                memory_total_bytes: None,
            },
        ];
        let mut acc = Accumulator::new(Duration::from_millis(50), 4, Some(&devices));
        let gpu0 = |util: f64, mem: u64, power: Option<f64>| GpuSample {
            index: 0,
            memory_used_bytes: Some(mem),
            memory_total_bytes: Some(80),
            utilization_percent: Some(util),
            power_watts: power,
            ..GpuSample::default()
        };
        let gpu1 = |temp: f64| GpuSample {
            index: 1,
            temperature_c: Some(temp),
            graphics_clock_mhz: Some(1000.0),
            ..GpuSample::default()
        };
        let host = HostSample {
            host_cpu_percent: Some(10.0),
            ..HostSample::default()
        };
        acc.add(&host, &[gpu0(10.0, 8, Some(100.0)), gpu1(40.0)]);
        acc.add(&host, &[gpu0(30.0, 16, None), gpu1(60.0)]);
        acc.add(&host, &[gpu0(80.0, 24, Some(300.0))]); // GPU 1 missing
        let s = acc.summary(Duration::from_millis(150));
        assert_eq!(s.samples, 3);
        assert_eq!(
            s.host_cpu_percent,
            Some(MeanMax {
                mean: 10.0,
                max: 10.0
            })
        );
        assert_eq!(s.host_memory_percent, None);
        let gpus = s.gpus.unwrap();
        assert_eq!(gpus.len(), 2);
        let (g0, g1) = (&gpus[0], &gpus[1]);
        assert_eq!(
            (g0.index, g0.name.as_deref(), g0.samples),
            (0, Some("A"), 3)
        );
        assert_eq!(
            g0.utilization_percent,
            Some(MeanMax {
                mean: 40.0,
                max: 80.0
            })
        );
        assert_eq!(
            g0.memory_used_bytes,
            Some(MeanMax {
                mean: 16.0,
                max: 24.0
            })
        );
        assert_eq!(g0.memory_total_bytes, Some(80));
        // Power was reported twice: averaged over those two, not three.
        assert_eq!(
            g0.power_watts,
            Some(MeanMax {
                mean: 200.0,
                max: 300.0
            })
        );
        assert_eq!(g0.temperature_c, None);
        assert_eq!(
            (g1.index, g1.name.as_deref(), g1.samples),
            (1, Some("B"), 2)
        );
        assert_eq!(
            g1.temperature_c,
            Some(MeanMax {
                mean: 50.0,
                max: 60.0
            })
        );
        assert_eq!(
            g1.graphics_clock_mhz,
            Some(MeanMax {
                mean: 1000.0,
                max: 1000.0
            })
        );
        assert_eq!(g1.utilization_percent, None);
        assert_eq!(g1.memory_total_bytes, None);
        // Absent, not zero, in the JSON.
        let json = serde_json::to_value(g1).unwrap();
        assert!(json.get("utilization_percent").is_none(), "{json}");
        assert!(json.get("power_watts").is_none(), "{json}");
    }

    #[test]
    fn without_probe_gpu_readings_are_ignored() {
        let mut acc = Accumulator::new(Duration::from_millis(100), 2, None);
        acc.add(
            &HostSample::default(),
            &[GpuSample {
                index: 0,
                utilization_percent: Some(50.0),
                ..GpuSample::default()
            }],
        );
        let s = acc.summary(Duration::ZERO);
        assert_eq!(s.samples, 1);
        assert!(s.gpus.is_none());
        assert!(s.host_cpu_percent.is_none());
    }

    #[test]
    fn gauge_skips_non_finite_values_and_keeps_mean_within_max() {
        let mut g = Gauge::default();
        g.add(Some(f64::NAN));
        assert_eq!(g.summary(), None);
        g.add(Some(-3.0));
        g.add(Some(f64::INFINITY));
        g.add(Some(-1.0));
        assert_eq!(
            g.summary(),
            Some(MeanMax {
                mean: -2.0,
                max: -1.0
            })
        );
        // Regression: the mean of equal values came out above them.
        let mut g = Gauge::default();
        for _ in 0..3 {
            g.add(Some(0.1));
        }
        assert_eq!(
            g.summary(),
            Some(MeanMax {
                mean: 0.1,
                max: 0.1
            })
        );
    }

    /// Reports value k on its k-th call, for GPUs 0 and 1 (GPU 1 doubled).
    struct CountingProbe {
        calls: Arc<AtomicU64>,
        dropped: Arc<AtomicBool>,
    }

    impl GpuProbe for CountingProbe {
        fn sample(&mut self) -> Vec<GpuSample> {
            let k = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            (0..2u32)
                .map(|index| GpuSample {
                    index,
                    utilization_percent: Some(k as f64 * f64::from(index + 1)),
                    energy_mj: Some(k * 1000 * u64::from(index + 1)),
                    ..GpuSample::default()
                })
                .collect()
        }

        fn describe(&self) -> Vec<GpuDevice> {
            (0..2)
                .map(|index| GpuDevice {
                    index,
                    name: format!("fake {index}"),
                    uuid: None,
                    memory_total_bytes: None,
                })
                .collect()
        }
    }

    impl Drop for CountingProbe {
        fn drop(&mut self) {
            self.dropped.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn sampler_thread_aggregates_a_fake_probe_per_index() {
        let calls = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicBool::new(false));
        let probe = CountingProbe {
            calls: calls.clone(),
            dropped: dropped.clone(),
        };
        let config = TelemetryConfig {
            interval: Duration::from_millis(20),
        };
        let sampler = Sampler::start(config, Some(Box::new(probe))).unwrap();
        std::thread::sleep(Duration::from_millis(150));
        let (s, probe) = sampler.finish().unwrap();
        // The first call reads the energy counters as the window opens: it
        // is no sample.
        let n = calls.load(Ordering::SeqCst) - 1;
        assert!(n >= 1);
        assert_eq!(s.samples, n);
        let gpus = s.gpus.as_ref().unwrap();
        assert_eq!(gpus.len(), 2);
        for (i, g) in gpus.iter().enumerate() {
            let scale = (i + 1) as f64;
            assert_eq!(g.index, i as u32);
            assert_eq!(g.name.as_deref(), Some(format!("fake {i}").as_str()));
            assert_eq!(g.samples, n);
            // Values k·scale for k = 2..=n+1: mean (n+3)/2·scale, max (n+1)·scale.
            let u = g.utilization_percent.unwrap();
            assert_eq!(u.mean, (n + 3) as f64 / 2.0 * scale);
            assert_eq!(u.max, (n + 1) as f64 * scale);
            // The counter rose by scale joules a call, from the window's
            // opening read to its last sample.
            let e = g.energy.as_ref().unwrap();
            assert_eq!(e.source, "counter");
            assert_eq!(e.joules, n as f64 * scale);
            assert!(e.window_s > 0.0 && e.average_power_w > 0.0);
        }
        // The probe comes back for the next point, and is dropped only then.
        assert!(!dropped.load(Ordering::SeqCst));
        drop(probe);
        assert!(dropped.load(Ordering::SeqCst));
    }

    #[test]
    fn a_point_shorter_than_half_an_interval_still_gets_one_sample() {
        let calls = Arc::new(AtomicU64::new(0));
        let probe = CountingProbe {
            calls: calls.clone(),
            dropped: Arc::new(AtomicBool::new(false)),
        };
        let config = TelemetryConfig {
            interval: Duration::from_secs(10),
        };
        let sampler = Sampler::start(config, Some(Box::new(probe))).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let (s, _probe) = sampler.finish().unwrap();
        assert_eq!(s.samples, 1);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "the opening read and one sample"
        );
        let gpus = s.gpus.unwrap();
        assert!(gpus
            .iter()
            .all(|g| g.samples == 1 && g.utilization_percent.is_some()));
        assert!(s.process_rss_bytes.is_some());
    }

    #[test]
    fn dropping_a_sampler_stops_its_thread() {
        let calls = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicBool::new(false));
        let probe = CountingProbe {
            calls,
            dropped: dropped.clone(),
        };
        let sampler = Sampler::start(TelemetryConfig::default(), Some(Box::new(probe))).unwrap();
        drop(sampler);
        // The thread was joined, so it has returned and dropped the probe.
        assert!(dropped.load(Ordering::SeqCst));
    }

    #[test]
    fn proc_stat_parsing_and_cpu_percent() {
        let text = "cpu  100 5 50 800 20 3 2 0 7 0\ncpu0 1 2 3 4\n";
        // total = 980, idle = 800 + 20; guest (7) is not counted twice.
        assert_eq!(parse_proc_stat(text), Some((160, 980)));
        assert_eq!(parse_proc_stat("intr 1 2 3\n"), None);
        assert_eq!(parse_proc_stat("cpu  1 x 3 4\n"), None);
        assert_eq!(parse_proc_stat("cpu 1 2\n"), None);
        assert_eq!(cpu_percent_between((160, 980), (185, 1080)), Some(25.0));
        assert_eq!(cpu_percent_between((160, 980), (160, 980)), None);
        assert_eq!(cpu_percent_between((160, 980), (150, 1080)), None);
    }
}
