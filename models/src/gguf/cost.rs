//! What a model costs per step, counted from its tensor table and attention
//! shape: the bytes a decode step reads and the arithmetic a prefill does.

use super::{GgufFile, TensorInfo};

/// Bytes a decode step reads: every weight once (the token embedding only
/// at its rows, unless the output projection is tied to it), and the K and
/// V of every cell in context, f16.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeTraffic {
    /// Weight bytes read per step: every tensor's data, less
    /// `token_embd.weight` when a separate `output.weight` exists.
    pub weight_bytes: u64,
    /// Bytes of f16 K and V one context cell holds over every layer:
    /// layers × KV heads × (key + value length) × 2.
    pub kv_bytes_per_cell: u64,
    /// Layers with a KV cache.
    pub layers: u64,
    /// Elements of one cell's K in one layer (KV heads × key length): the
    /// row a quantized cache type stores in blocks.
    pub k_row_elements: u64,
    /// Elements of one cell's V in one layer (KV heads × value length).
    pub v_row_elements: u64,
    /// What the count assumes.
    pub notes: Vec<String>,
}

/// Arithmetic a prefill does, counted from the tensor table and the
/// attention shape: one multiply-add (2 FLOPs) per weight element a token
/// passes through, and the scores and weighted values of attention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefillCompute {
    /// 2 × the elements of every matrix a prompt token is multiplied by:
    /// every 2-D weight but the lookup tables and the output projection
    /// (of expert tensors, the share of the experts a token uses).
    pub weight_flops_per_token: u64,
    /// 2 × the elements of the output projection, once per sequence:
    /// llama.cpp computes logits only for tokens flagged for output, and
    /// the harness flags each prompt's last token alone.
    pub output_flops_per_sequence: u64,
    /// QKᵀ and AV of one token against one cell of context, every layer:
    /// 2 × n_head × (key + value length) × layers.
    pub attention_flops_per_cell: u64,
    /// What the count assumes.
    pub notes: Vec<String>,
}

impl PrefillCompute {
    /// FLOPs of one prefill of `batch` prompts of `prompt` tokens each.
    /// Attention is causal: the i-th token of a prompt (from 1) attends to
    /// i cells, P(P+1)/2 cells a prompt, a mean context of (P+1)/2.
    pub fn flops(&self, prompt: u32, batch: u32) -> u64 {
        let (prompt, batch) = (u64::from(prompt), u64::from(batch));
        let cells = prompt * (prompt + 1) / 2;
        batch.saturating_mul(
            prompt
                .saturating_mul(self.weight_flops_per_token)
                .saturating_add(self.output_flops_per_sequence)
                .saturating_add(cells.saturating_mul(self.attention_flops_per_cell)),
        )
    }
}

/// What both rooflines read of the attention's shape.
struct AttentionShape {
    layers: u64,
    heads: u64,
    key: u64,
    value: u64,
}

impl GgufFile {
    /// Layers, query heads and K/V head sizes, as llama.cpp reads them
    /// (head sizes default to embedding / heads); 0 where absent.
    fn attention_shape(&self) -> AttentionShape {
        let heads = self.arch_u64("attention.head_count").unwrap_or(0);
        let embedding = self.arch_u64("embedding_length").unwrap_or(0);
        let head_dim = embedding.checked_div(heads).unwrap_or(0);
        AttentionShape {
            layers: self.arch_u64("block_count").unwrap_or(0),
            heads,
            key: self.arch_u64("attention.key_length").unwrap_or(head_dim),
            value: self.arch_u64("attention.value_length").unwrap_or(head_dim),
        }
    }

    /// What one decode step must read from memory, from the tensor table
    /// and the attention shape (see [`DecodeTraffic`]).
    pub fn decode_traffic(&self) -> DecodeTraffic {
        let has_output = self.tensors.iter().any(|t| t.name == "output.weight");
        let mut notes = Vec::new();
        if !has_output {
            notes.push(
                "no output.weight: the output projection is token_embd.weight (tied), read whole every step"
                    .to_string(),
            );
        }
        // The embedding table is read only at the rows of the step's tokens,
        // unless it is also the output projection.
        let weight_bytes = self
            .tensors
            .iter()
            .filter(|t| !(has_output && t.name == "token_embd.weight"))
            .map(TensorInfo::byte_size)
            .sum();
        let AttentionShape {
            layers,
            heads,
            key,
            value,
        } = self.attention_shape();
        let kv_heads = self.arch_u64("attention.head_count_kv").unwrap_or(heads);
        if let Some(window) = self.arch_u64("attention.sliding_window") {
            notes.push(format!(
                "sliding-window layers (window {window}) are counted as reading every cell: exact for contexts up to the window, an overestimate beyond"
            ));
        }
        DecodeTraffic {
            weight_bytes,
            // K and V of one cell in every layer, f16 as llama.cpp keeps them.
            kv_bytes_per_cell: layers * kv_heads * (key + value) * 2,
            layers,
            k_row_elements: kv_heads * key,
            v_row_elements: kv_heads * value,
            notes,
        }
    }

    /// The arithmetic of a prefill, from the tensor table and the attention
    /// shape (see [`PrefillCompute`]).
    pub fn prefill_compute(&self) -> PrefillCompute {
        let has_output = self.tensors.iter().any(|t| t.name == "output.weight");
        let output_name = if has_output {
            "output.weight"
        } else {
            "token_embd.weight"
        };
        // Lookup tables (token, position, per-layer embeddings) are read at
        // a token's row: no arithmetic.
        let lookup = |name: &str| name.ends_with("_embd.weight") || name == "token_types.weight";
        let experts = self.arch_u64("expert_count").unwrap_or(0);
        let experts_used = self.arch_u64("expert_used_count").unwrap_or(experts);
        let mut notes = vec![
            "prefill FLOPs: 2 per weight element a token passes through (the output projection once per sequence, for its last token), plus causal attention (QK^T and AV, token i of a prompt against i cells); norms, RoPE, softmax and activations are not counted".to_string(),
        ];
        let mut weight_flops_per_token = 0u64;
        let mut output_flops_per_sequence = 0u64;
        for t in &self.tensors {
            let flops = t.elements().saturating_mul(2);
            if t.name == output_name {
                output_flops_per_sequence = flops;
            } else if t.dims.len() == 2 && !lookup(&t.name) {
                weight_flops_per_token = weight_flops_per_token.saturating_add(flops);
            } else if t.dims.len() == 3 && experts > 0 {
                // Expert tensors stack every expert's matrix; a token goes
                // through the ones it is routed to.
                weight_flops_per_token = weight_flops_per_token
                    .saturating_add(flops / experts.max(1) * experts_used.min(experts));
            }
        }
        if experts > 0 {
            notes.push(format!(
                "mixture of experts: {experts_used} of {experts} experts counted per token"
            ));
        }
        if !has_output {
            notes.push(
                "prefill: no output.weight: the tied token_embd.weight is the output projection, counted once per sequence".to_string(),
            );
        }
        let AttentionShape {
            layers,
            heads,
            key,
            value,
        } = self.attention_shape();
        if let Some(window) = self.arch_u64("attention.sliding_window") {
            notes.push(format!(
                "prefill: sliding-window layers (window {window}) are counted as attending to every earlier token: exact for prompts up to the window, an overestimate beyond"
            ));
        }
        PrefillCompute {
            weight_flops_per_token,
            output_flops_per_sequence,
            attention_flops_per_cell: 2 * layers * heads * (key + value),
            notes,
        }
    }
}
