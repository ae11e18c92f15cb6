//! A campaign: a grid of runs described in one TOML file, each cell a spec
//! of the kind `inproc`, `http`, `rounds` or `contrast` record, with an id
//! that stays the cell's when cells are added, so that a results directory
//! holding one file per id tells what is done and what is missing.
//!
//! ```toml
//! results = "tiny-results"      # relative to this file (default: <stem>-results)
//! [base]                        # every cell starts from it: any spec's keys
//! command = "inproc"
//! prompt_tokens = [16]
//! [grid]                        # each key a list of values: every combination
//! threads = [1, 2]
//! batch = [[1], [2]]
//! [[cells]]                     # cells given whole, beside the grid
//! name = "long prompt"
//! prompt_tokens = [64]
//! gpus = 1                      # what the cell asks the scheduler for
//! ```
//!
//! `gpus` (in `[base]`, `[grid]` or a cell) is the cell's, not its spec's:
//! it does not change the id. Left out, a cell that offloads layers
//! (`n_gpu_layers` other than 0) asks for one GPU and any other for none.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{Spec, SpecFileError};

/// Characters of the spec's sha256 that name a cell.
const ID_LEN: usize = 12;

/// Why a campaign file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The campaign file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not a campaign: bad TOML, a key of the wrong type.
    #[error("{path}: {message}")]
    Parse {
        /// The campaign file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A cell is not a valid spec.
    #[error("{path}: cell {label}: {source}")]
    Cell {
        /// The campaign file.
        path: PathBuf,
        /// The cell, as `list` names it.
        label: String,
        /// The spec's own error.
        source: SpecFileError,
    },
    /// Two cells are the same spec.
    #[error("{path}: cells {a} and {b} are the same run (id {id}): drop one")]
    Duplicate {
        /// The campaign file.
        path: PathBuf,
        /// The first cell.
        a: String,
        /// The second.
        b: String,
        /// Their id.
        id: String,
    },
}

/// One run of a campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// The first characters of the sha256 of the cell's spec as JSON: the
    /// same spec, the same id, wherever the cell sits in the file.
    pub id: String,
    /// What sets it apart: its grid values (`threads=2 batch=[1]`) or its
    /// `name`.
    pub label: String,
    /// What it runs.
    pub spec: Spec,
    /// GPUs its scheduler gives it (`sbatch --gres=gpu:N`, Ray's
    /// `num_gpus`).
    pub gpus: u32,
}

/// The GPUs a cell that does not say asks for: one where it offloads
/// layers to a GPU.
fn gpus_wanted(spec: &Spec) -> u32 {
    let offloads = match spec {
        Spec::Inproc(s) => s.n_gpu_layers.iter().any(|&n| n != 0),
        Spec::Contrast(s) => s.n_gpu_layers != 0,
        Spec::Http(_) | Spec::Rounds(_) => false,
    };
    u32::from(offloads)
}

/// A parsed campaign file.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    /// The campaign file.
    pub path: PathBuf,
    /// Where each cell's result goes, `<id>.json`.
    pub results: PathBuf,
    /// The cells, in the file's order: the grid's combinations (its keys in
    /// alphabetical order, the last varying fastest), then `[[cells]]`.
    pub cells: Vec<Cell>,
}

impl Campaign {
    /// Reads and expands a campaign file, every cell checked as a spec.
    pub fn read(path: &Path) -> Result<Campaign, CampaignError> {
        let text = std::fs::read_to_string(path).map_err(|source| CampaignError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Campaign::parse(&text, path)
    }

    /// Expands a campaign's text; `path` places its results and names it in
    /// errors.
    pub fn parse(text: &str, path: &Path) -> Result<Campaign, CampaignError> {
        let error = |message: String| CampaignError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let table: toml::Table = toml::from_str(text).map_err(|e| error(e.to_string()))?;
        let mut root = match serde_json::to_value(table).map_err(|e| error(e.to_string()))? {
            Value::Object(m) => m,
            _ => return Err(error("a campaign is a table of keys".into())),
        };
        let results = match root.remove("results") {
            None => {
                let stem = path
                    .file_stem()
                    .map_or_else(|| "campaign".into(), |s| s.to_string_lossy().into_owned());
                format!("{stem}-results")
            }
            Some(Value::String(s)) => s,
            Some(_) => return Err(error("results: give a directory as a string".into())),
        };
        let base = match root.remove("base") {
            None => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Err(error("[base] is a table of spec keys".into())),
        };
        let grid = match root.remove("grid") {
            None => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Err(error("[grid] is a table of lists".into())),
        };
        let extra = match root.remove("cells") {
            None => Vec::new(),
            Some(Value::Array(cells)) => cells,
            Some(_) => return Err(error("[[cells]] is an array of tables".into())),
        };
        if let Some(key) = root.keys().next() {
            return Err(error(format!(
                "unknown key {key}: a campaign has results, [base], [grid] and [[cells]]"
            )));
        }

        // (label, spec keys, the grid keys set in it)
        let mut drafts: Vec<(String, Map<String, Value>, Vec<String>)> = Vec::new();
        let mut combos: Vec<Vec<(String, Value)>> = vec![Vec::new()];
        for (key, values) in &grid {
            let Value::Array(values) = values else {
                return Err(error(format!("grid.{key}: give a list of values")));
            };
            if values.is_empty() {
                return Err(error(format!("grid.{key}: the list is empty")));
            }
            combos = combos
                .into_iter()
                .flat_map(|combo| {
                    values.iter().map(move |v| {
                        let mut next = combo.clone();
                        next.push((key.clone(), v.clone()));
                        next
                    })
                })
                .collect();
        }
        if !grid.is_empty() || extra.is_empty() {
            for combo in combos {
                let mut spec = base.clone();
                let label: Vec<String> = combo
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.to_string().replace('"', "")))
                    .collect();
                let keys = combo.iter().map(|(k, _)| k.clone()).collect();
                spec.extend(combo);
                let label = if label.is_empty() {
                    "base".to_string()
                } else {
                    label.join(" ")
                };
                drafts.push((label, spec, keys));
            }
        }
        for (i, cell) in extra.into_iter().enumerate() {
            let Value::Object(mut cell) = cell else {
                return Err(error(format!("cells[{i}] is not a table")));
            };
            let label = match cell.remove("name") {
                Some(Value::String(name)) => name,
                Some(_) => return Err(error(format!("cells[{i}].name: give a string"))),
                None => format!("cells[{i}]"),
            };
            let mut spec = base.clone();
            spec.extend(cell);
            drafts.push((label, spec, Vec::new()));
        }

        let mut cells: Vec<Cell> = Vec::with_capacity(drafts.len());
        for (label, mut draft, grid_keys) in drafts {
            let gpus = match draft.remove("gpus") {
                None => None,
                Some(v) => Some(v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(
                    || {
                        error(format!(
                            "cell {label}: gpus = {v}: give a whole number of GPUs"
                        ))
                    },
                )?),
            };
            // A grid value for a key the spec holds as a list (`threads = [1,
            // 2]`: 1, then 2) is that list of one.
            let mut listed = draft.clone();
            let mut wrapped = false;
            for k in &grid_keys {
                if let Some(v) = listed.get_mut(k).filter(|v| !v.is_array()) {
                    *v = Value::Array(vec![v.take()]);
                    wrapped = true;
                }
            }
            let parsed = Spec::parse(&Value::Object(draft).to_string(), path).or_else(|e| {
                if wrapped {
                    // The list's error, when the list was meant.
                    Spec::parse(&Value::Object(listed).to_string(), path)
                } else {
                    Err(e)
                }
            });
            let spec = parsed.map_err(|source| CampaignError::Cell {
                path: path.to_path_buf(),
                label: label.clone(),
                source,
            })?;
            let id = cell_id(&spec);
            if let Some(same) = cells.iter().find(|c| c.id == id) {
                return Err(CampaignError::Duplicate {
                    path: path.to_path_buf(),
                    a: same.label.clone(),
                    b: label,
                    id,
                });
            }
            let gpus = gpus.unwrap_or_else(|| gpus_wanted(&spec));
            cells.push(Cell {
                id,
                label,
                spec,
                gpus,
            });
        }
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        Ok(Campaign {
            path: path.to_path_buf(),
            results: dir.join(results),
            cells,
        })
    }

    /// The result file of `cell`.
    pub fn result_path(&self, cell: &Cell) -> PathBuf {
        self.results.join(format!("{}.json", cell.id))
    }

    /// The cell of `id` (or of a prefix of it naming one cell).
    pub fn cell(&self, id: &str) -> Option<&Cell> {
        let matching: Vec<&Cell> = self.cells.iter().filter(|c| c.id.starts_with(id)).collect();
        match matching.as_slice() {
            [one] if !id.is_empty() => Some(one),
            _ => None,
        }
    }
}

/// The id of a spec: sha256 of its JSON (keys sorted, as `serde_json`
/// writes a map), first characters.
fn cell_id(spec: &Spec) -> String {
    let json = serde_json::to_value(spec)
        .map(|v| v.to_string())
        .unwrap_or_default();
    let digest = Sha256::digest(json.as_bytes());
    digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .chars()
        .take(ID_LEN)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRID: &str = r#"
        results = "out"
        [base]
        command = "inproc"
        prompt_tokens = [16]
        gen_tokens = 4
        [grid]
        threads = [1, 2]
        batch = [1, 2]
    "#;

    #[test]
    fn a_grid_expands_to_cells_whose_ids_survive_added_cells() {
        let path = Path::new("/tmp/c/tiny.toml");
        let c = Campaign::parse(GRID, path).expect("a campaign");
        assert_eq!(c.results, Path::new("/tmp/c/out"));
        let labels: Vec<&str> = c.cells.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "batch=1 threads=1",
                "batch=1 threads=2",
                "batch=2 threads=1",
                "batch=2 threads=2"
            ]
        );
        let Spec::Inproc(first) = &c.cells[0].spec else {
            panic!("an inproc cell")
        };
        assert_eq!(
            (first.batch.clone(), first.prompt_tokens.clone()),
            (vec![1], vec![16])
        );
        // A value added to the grid and a cell given whole: the old cells
        // keep their ids.
        let more = GRID.replace("threads = [1, 2]", "threads = [1, 2, 4]")
            + "[[cells]]\nname = \"long\"\nprompt_tokens = [64]\n";
        let d = Campaign::parse(&more, path).expect("a campaign");
        assert_eq!(d.cells.len(), 7);
        for cell in &c.cells {
            let same = d
                .cells
                .iter()
                .find(|x| x.label == cell.label)
                .expect("kept");
            assert_eq!(same.id, cell.id, "{}", cell.label);
        }
        assert_eq!(d.cells[6].label, "long");
        assert_eq!(
            d.cell(&c.cells[0].id[..6]).map(|x| &x.label),
            Some(&c.cells[0].label)
        );
    }

    #[test]
    fn a_cell_asks_for_the_gpus_it_says_or_one_where_it_offloads() {
        let path = Path::new("g.toml");
        let text = GRID.to_string()
            + "[[cells]]\nname = \"offloaded\"\nn_gpu_layers = [-1]\n\
               [[cells]]\nname = \"two\"\nn_gpu_layers = [99]\ngpus = 2\n\
               [[cells]]\nname = \"told none\"\nn_gpu_layers = [1]\ngpus = 0\n";
        let c = Campaign::parse(&text, path).expect("a campaign");
        let gpus: Vec<(&str, u32)> = c.cells.iter().map(|c| (c.label.as_str(), c.gpus)).collect();
        assert_eq!(
            gpus[3..],
            [
                ("batch=2 threads=2", 0),
                ("offloaded", 1),
                ("two", 2),
                ("told none", 0)
            ]
        );
        // Not part of the spec: the same run keeps its id whatever it asks for.
        let without = Campaign::parse(&text.replace("gpus = 2\n", ""), path).expect("a campaign");
        assert_eq!(without.cells[5].id, c.cells[5].id);
        assert_eq!(without.cells[5].gpus, 1);
        for bad in ["gpus = -1", "gpus = \"one\"", "gpus = 1.5"] {
            let e = Campaign::parse(&GRID.replace("[grid]", &format!("{bad}\n[grid]")), path)
                .expect_err(bad)
                .to_string();
            assert!(e.contains("give a whole number of GPUs"), "{bad}: {e}");
        }
    }

    #[test]
    fn bad_cells_are_named() {
        let path = Path::new("c.toml");
        let bad = GRID.replace("threads = [1, 2]", "threads = [0]");
        let e = Campaign::parse(&bad, path)
            .expect_err("threads 0")
            .to_string();
        assert!(e.starts_with("c.toml: cell batch=1 threads=0:"), "{e}");
        let unknown = GRID.replace("[grid]", "[grid]\nthreadz = [1]");
        let e = Campaign::parse(&unknown, path)
            .expect_err("unknown")
            .to_string();
        assert!(e.contains("threadz"), "{e}");
        let twice = GRID.replace("threads = [1, 2]", "threads = [1, 1]");
        let e = Campaign::parse(&twice, path)
            .expect_err("twice")
            .to_string();
        assert!(e.contains("are the same run"), "{e}");
        let e = Campaign::parse("colour = 1", path)
            .expect_err("key")
            .to_string();
        assert!(e.contains("unknown key colour"), "{e}");
    }
}
