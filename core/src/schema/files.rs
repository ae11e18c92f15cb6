//! The JSON Schemas of the files inferbench writes and reads, generated from
//! the serde types themselves, so that the types are the only home of a
//! file's shape: a field's doc comment becomes its description. The
//! repository commits the generated text under `schema/`; a test regenerates
//! it and fails on any difference, and `inferbench schema NAME` prints it.

use serde_json::Value;

use super::compare::Comparison;
use super::contrast::ContrastResult;
use super::plan::Plan;
use super::rounds::RoundsResult;
use super::{HttpResult, InprocResult};
use crate::spec::Spec;

/// A file whose schema inferbench generates, by the name
/// `inferbench schema` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaFile {
    /// Spec files (`inferbench run`) and results' `settings.spec`.
    Spec,
    /// `inproc` and `http` result files.
    Result,
    /// `compare --out`.
    Compare,
    /// `contrast`'s result file.
    Contrast,
    /// `http` with several `--url` or `--rounds`.
    Rounds,
    /// `plan --out`.
    Plan,
}

/// A result file of either mode, as its schema describes it: the `mode`
/// key says which.
#[derive(schemars::JsonSchema)]
#[schemars(untagged)]
#[expect(
    dead_code,
    reason = "only its schema is used: results are read by AnyResult"
)]
enum ResultFileShape {
    /// `inferbench inproc`'s file (`mode` "inproc").
    Inproc(Box<InprocResult>),
    /// `inferbench http`'s file (`mode` "http").
    Http(Box<HttpResult>),
}

impl SchemaFile {
    /// Every file, in the order `inferbench schema` lists them.
    pub const ALL: [SchemaFile; 6] = [
        SchemaFile::Spec,
        SchemaFile::Result,
        SchemaFile::Compare,
        SchemaFile::Contrast,
        SchemaFile::Rounds,
        SchemaFile::Plan,
    ];

    /// The name `inferbench schema` takes.
    pub fn name(self) -> &'static str {
        match self {
            SchemaFile::Spec => "spec",
            SchemaFile::Result => "result",
            SchemaFile::Compare => "compare",
            SchemaFile::Contrast => "contrast",
            SchemaFile::Rounds => "rounds",
            SchemaFile::Plan => "plan",
        }
    }

    /// The file under `schema/` that commits it.
    pub fn file_name(self) -> String {
        format!("{}.schema.json", self.name())
    }

    /// The schema's `$id`.
    pub fn id(self) -> String {
        schema_id(self.name())
    }

    /// The schema, as committed: draft 2020-12, every object closed
    /// (`additionalProperties: false`), so that a committed older file
    /// holding a key the types no longer know fails validation: keys are a
    /// contract and are never dropped.
    pub fn generate(self) -> Value {
        let (title, schema) = match self {
            SchemaFile::Spec => ("inferbench spec", schemars::schema_for!(Spec)),
            SchemaFile::Result => (
                "inferbench result file",
                schemars::schema_for!(ResultFileShape),
            ),
            SchemaFile::Compare => ("inferbench comparison", schemars::schema_for!(Comparison)),
            SchemaFile::Contrast => (
                "inferbench contrast result",
                schemars::schema_for!(ContrastResult),
            ),
            SchemaFile::Rounds => (
                "inferbench rounds result",
                schemars::schema_for!(RoundsResult),
            ),
            SchemaFile::Plan => ("inferbench capacity plan", schemars::schema_for!(Plan)),
        };
        let by_mode = self == SchemaFile::Result;
        finish(schema, &self.id(), title, by_mode)
    }

    /// [`SchemaFile::generate`] as the committed text.
    pub fn text(self) -> String {
        text(&self.generate())
    }
}

/// The `$id` of the schema committed as `schema/{name}.schema.json`.
pub fn schema_id(name: &str) -> String {
    format!("https://inferbench.invalid/schema/{name}.schema.json")
}

/// A generated schema as inferbench commits it: every object closed, its
/// `$id` and title set (`by_mode`: the result schema's two shapes chosen by
/// `mode`). Files whose types live in other crates (the requests log) are
/// finished here too, so that every schema follows the same rules.
pub fn finish(schema: schemars::Schema, id: &str, title: &str, by_mode: bool) -> Value {
    let mut value = schema.to_value();
    close_objects(&mut value);
    if by_mode {
        self::by_mode(&mut value);
    }
    if let Value::Object(map) = &mut value {
        map.insert("$id".into(), id.into());
        map.insert("title".into(), title.into());
    }
    value
}

/// A schema as committed text: pretty JSON and a final newline.
pub fn text(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).unwrap_or_default();
    text.push('\n');
    text
}

/// The result schema's two shapes chosen by `mode` (if/then/else) rather
/// than tried in turn (anyOf), so that a validator names what is wrong
/// with a file instead of saying that it fits neither.
fn by_mode(value: &mut Value) {
    let Some(map) = value.as_object_mut() else {
        return;
    };
    let Some(Value::Array(shapes)) = map.remove("anyOf") else {
        return;
    };
    let [inproc, http] = <[Value; 2]>::try_from(shapes).unwrap_or_default();
    map.insert(
        "if".into(),
        serde_json::json!({
            "properties": { "mode": { "const": "inproc" } },
            "required": ["mode"],
        }),
    );
    map.insert("then".into(), inproc);
    map.insert("else".into(), http);
}

/// Closes every object schema: `additionalProperties: false` where the
/// object lists its properties and says nothing of others (maps say what
/// their values are, and are left as they are).
///
/// An internally tagged enum's variant is a `$ref` with the tag's property
/// beside it; `additionalProperties` cannot see through a `$ref`, so such a
/// definition is left open and every reference to it is closed instead with
/// `unevaluatedProperties: false`, which sees both.
fn close_objects(value: &mut Value) {
    let mut tagged = std::collections::BTreeSet::new();
    find_tagged_refs(value, &mut tagged);
    close(value, &tagged, None);
}

fn find_tagged_refs(value: &Value, tagged: &mut std::collections::BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let (Some(Value::String(target)), true) =
                (map.get("$ref"), map.contains_key("properties"))
            {
                tagged.insert(target.clone());
            }
            map.values().for_each(|v| find_tagged_refs(v, tagged));
        }
        Value::Array(items) => items.iter().for_each(|v| find_tagged_refs(v, tagged)),
        _ => {}
    }
}

/// `def` is the `$ref` by which `value` is a definition (`#/$defs/Name`).
fn close(value: &mut Value, tagged: &std::collections::BTreeSet<String>, def: Option<String>) {
    match value {
        Value::Object(map) => {
            let refers_to_tagged =
                matches!(map.get("$ref"), Some(Value::String(t)) if tagged.contains(t));
            if refers_to_tagged {
                map.insert("unevaluatedProperties".into(), Value::Bool(false));
            } else if map.contains_key("properties")
                && !map.contains_key("additionalProperties")
                && !def.as_ref().is_some_and(|d| tagged.contains(d))
            {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            for (key, v) in map.iter_mut() {
                if key == "$defs" {
                    if let Value::Object(defs) = v {
                        for (name, d) in defs.iter_mut() {
                            close(d, tagged, Some(format!("#/$defs/{name}")));
                        }
                    }
                } else {
                    close(v, tagged, None);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| close(v, tagged, None)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_has_its_id_and_closes_its_objects() {
        for file in SchemaFile::ALL {
            let schema = file.generate();
            assert_eq!(schema["$id"], file.id());
            assert_eq!(
                schema["$schema"],
                "https://json-schema.org/draft/2020-12/schema"
            );
        }
        // Every definition with properties is closed, but the spec's
        // variants, whose references are closed instead.
        let result = SchemaFile::Result.generate();
        let defs = result["$defs"].as_object().unwrap();
        let open: Vec<&str> = defs
            .iter()
            .filter(|(_, d)| d.get("properties").is_some() && d["additionalProperties"] != false)
            .map(|(name, _)| name.as_str())
            .collect();
        assert_eq!(
            open,
            ["ContrastSpec", "HttpSpec", "InprocSpec", "RoundsSpec"]
        );
        for variant in defs["Spec"]["oneOf"].as_array().unwrap() {
            assert_eq!(variant["unevaluatedProperties"], false, "{variant}");
        }
    }

    #[test]
    fn doc_comments_become_descriptions() {
        let result = SchemaFile::Result.generate();
        let text = result.to_string();
        // ResultFile::partial's doc comment.
        assert!(
            text.contains("True unless every requested point was measured completely."),
            "{text}"
        );
    }
}
