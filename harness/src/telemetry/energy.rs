//! Energy over a sampling window: from an energy counter where the device
//! has one (NVML's total energy consumption on a GPU, RAPL's `energy_uj` on
//! a CPU package), else from power samples times the time each covered.

use std::path::{Path, PathBuf};

use crate::schema::telemetry::EnergyReading;

/// Readings of one device's energy counter and power over a window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnergyMeter {
    /// The first counter reading (joules) and when (seconds).
    first: Option<(f64, f64)>,
    /// The last counter reading and when.
    last: Option<(f64, f64)>,
    /// Joules added by the counter's wraps (RAPL's counters wrap at
    /// `max_energy_range_uj`).
    wrapped: f64,
    /// Where the counter wraps, in joules.
    range: Option<f64>,
    /// The last power reading (watts) and when.
    power: Option<(f64, f64)>,
    /// The first power reading's time.
    power_first: Option<f64>,
    /// Σ power × the time until the next reading, joules.
    power_integral: f64,
}

impl EnergyMeter {
    /// A meter of a counter that wraps at `range` joules.
    pub fn wrapping_at(range: f64) -> EnergyMeter {
        EnergyMeter {
            range: Some(range),
            ..EnergyMeter::default()
        }
    }

    /// The counter read `joules` at `at_s` seconds into the window.
    pub fn counter(&mut self, joules: f64, at_s: f64) {
        if let Some((previous, _)) = self.last {
            if joules < previous {
                // A wrap where the range is known; else a reset, which the
                // window cannot span.
                match self.range {
                    Some(range) => self.wrapped += range,
                    None => {
                        self.first = Some((joules, at_s));
                        self.wrapped = 0.0;
                    }
                }
            }
        }
        self.first.get_or_insert((joules, at_s));
        self.last = Some((joules, at_s));
    }

    /// The device drew `watts` at `at_s`: the previous reading's power is
    /// taken to have held until now.
    pub fn power(&mut self, watts: f64, at_s: f64) {
        if let Some((previous, since)) = self.power {
            self.power_integral += previous * (at_s - since).max(0.0);
        }
        self.power_first.get_or_insert(at_s);
        self.power = Some((watts, at_s));
    }

    /// The energy over the window: the counter's difference where it was
    /// read twice, else the power integral where power was read twice.
    pub fn reading(&self) -> Option<EnergyReading> {
        let reading = |joules: f64, window_s: f64, source: &str| {
            (window_s > 0.0).then(|| EnergyReading {
                joules,
                window_s,
                average_power_w: joules / window_s,
                source: source.into(),
            })
        };
        if let (Some((j0, t0)), Some((j1, t1))) = (self.first, self.last) {
            if t1 > t0 {
                return reading(j1 + self.wrapped - j0, t1 - t0, "counter");
            }
        }
        let (first, (_, last)) = (self.power_first?, self.power?);
        reading(self.power_integral, last - first, "power_integral")
    }
}

/// The CPU packages' RAPL counters (`/sys/class/powercap/<name>-rapl:N`,
/// package domains only: their subzones are parts of them).
#[derive(Debug, Clone)]
pub struct Rapl {
    /// Each package's `energy_uj` file and where it wraps, in joules.
    packages: Vec<(PathBuf, f64)>,
}

impl Rapl {
    /// The packages under `root` (normally `/sys/class/powercap`), or why
    /// there are none to read.
    pub fn find(root: &Path) -> Result<Rapl, String> {
        let entries = std::fs::read_dir(root)
            .map_err(|_| format!("no RAPL: {} does not exist", root.display()))?;
        let mut packages: Vec<(PathBuf, f64)> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                // "intel-rapl:0" (AMD's too), not the subzone "intel-rapl:0:0".
                name.contains("rapl:") && name.matches(':').count() == 1
            })
            .filter_map(|p| {
                let energy = p.join("energy_uj");
                let range = std::fs::read_to_string(p.join("max_energy_range_uj"))
                    .ok()?
                    .trim()
                    .parse::<f64>()
                    .ok()?;
                std::fs::read_to_string(&energy).ok()?;
                Some((energy, range / 1e6))
            })
            .collect();
        packages.sort_by(|a, b| a.0.cmp(&b.0));
        if packages.is_empty() {
            return Err(format!(
                "no RAPL package counter readable under {}",
                root.display()
            ));
        }
        Ok(Rapl { packages })
    }

    /// A meter per package.
    pub fn meters(&self) -> Vec<EnergyMeter> {
        self.packages
            .iter()
            .map(|(_, range)| EnergyMeter::wrapping_at(*range))
            .collect()
    }

    /// Reads every package into its meter at `at_s`.
    pub fn read(&self, meters: &mut [EnergyMeter], at_s: f64) {
        for ((path, _), meter) in self.packages.iter().zip(meters) {
            if let Some(uj) = std::fs::read_to_string(path)
                .ok()
                .and_then(|t| t.trim().parse::<f64>().ok())
            {
                meter.counter(uj / 1e6, at_s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_gives_its_difference_and_survives_a_wrap() {
        let mut m = EnergyMeter::default();
        m.counter(100.0, 0.0);
        m.counter(130.0, 1.0);
        m.counter(160.0, 2.0);
        let r = m.reading().unwrap();
        assert_eq!((r.joules, r.window_s, r.average_power_w), (60.0, 2.0, 30.0));
        assert_eq!(r.source, "counter");

        let mut rapl = EnergyMeter::wrapping_at(1000.0);
        rapl.counter(990.0, 0.0);
        rapl.counter(5.0, 1.0);
        assert_eq!(rapl.reading().unwrap().joules, 15.0);
    }

    #[test]
    fn without_a_counter_power_is_integrated_and_labelled() {
        let mut m = EnergyMeter::default();
        m.power(100.0, 0.0);
        m.power(200.0, 0.5);
        m.power(200.0, 1.0);
        let r = m.reading().unwrap();
        // 100 W for 0.5 s, then 200 W for 0.5 s.
        assert_eq!(r.joules, 150.0);
        assert_eq!(r.source, "power_integral");
        assert!(EnergyMeter::default().reading().is_none());
        let mut once = EnergyMeter::default();
        once.power(50.0, 0.0);
        assert!(once.reading().is_none(), "one reading spans no time");
    }

    #[test]
    fn rapl_packages_are_found_and_read_and_absence_is_said() {
        let dir = tempfile::tempdir().unwrap();
        let err = Rapl::find(&dir.path().join("powercap")).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
        for (zone, uj) in [
            ("intel-rapl:0", "1000000"),
            ("intel-rapl:0:0", "5"),
            ("intel-rapl:1", "2000000"),
        ] {
            let z = dir.path().join(zone);
            std::fs::create_dir(&z).unwrap();
            std::fs::write(z.join("energy_uj"), uj).unwrap();
            std::fs::write(z.join("max_energy_range_uj"), "262143328850").unwrap();
        }
        let rapl = Rapl::find(dir.path()).unwrap();
        let mut meters = rapl.meters();
        assert_eq!(meters.len(), 2, "packages only, not their subzones");
        rapl.read(&mut meters, 0.0);
        std::fs::write(dir.path().join("intel-rapl:0/energy_uj"), "3000000").unwrap();
        std::fs::write(dir.path().join("intel-rapl:1/energy_uj"), "2500000").unwrap();
        rapl.read(&mut meters, 2.0);
        let readings: Vec<EnergyReading> = meters.iter().filter_map(EnergyMeter::reading).collect();
        let sum = EnergyReading::total(&readings).unwrap();
        assert_eq!(
            (sum.joules, sum.window_s, sum.average_power_w),
            (2.5, 2.0, 1.25)
        );
    }
}
