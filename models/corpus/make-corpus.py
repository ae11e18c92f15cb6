#!/usr/bin/env python3
"""Writes the corpus of crafted GGUF files every reader change must refuse
(ffi/tests/gguf_mutations.rs checks each against EXPECTED.txt). Run it to
regenerate; the files are committed."""
import struct

def s(text):
    b = text.encode()
    return struct.pack('<Q', len(b)) + b

def kv_str(key, val):
    return s(key) + struct.pack('<I', 8) + s(val)

ARCH = kv_str('general.architecture', 'llama')

def gguf(tensors, kvs=(ARCH,), tensor_count=None, kv_count=None, data=32, align=32):
    body = b'GGUF' + struct.pack('<I', 3)
    body += struct.pack('<Q', len(tensors) if tensor_count is None else tensor_count)
    body += struct.pack('<Q', len(kvs) if kv_count is None else kv_count)
    body += b''.join(kvs)
    for name, dims, type_id, offset in tensors:
        body += s(name) + struct.pack('<I', len(dims)) + b''.join(struct.pack('<Q', d) for d in dims)
        body += struct.pack('<II', type_id, 0)[:4] + struct.pack('<Q', offset)
    body += b'\0' * (-len(body) % align)
    return body + b'\0' * data

F32, Q8_0 = 0, 8
cases = {
    'dims-2e62-f32.gguf': (gguf([('t', [1 << 62], F32, 0)], data=0), 'overflow'),
    'dims-product-overflow.gguf': (gguf([('t', [1 << 32, 1 << 32], F32, 0)]), 'overflow'),
    'f32-bytes-past-int64.gguf': (gguf([('t', [1 << 61], F32, 0)]), 'overflow a byte count'),
    'huge-tensor-count.gguf': (gguf([], tensor_count=1 << 62), 'tensor count declares'),
    'huge-metadata-count.gguf': (gguf([], kv_count=1 << 62), 'metadata count declares'),
    'huge-string.gguf': (b'GGUF' + struct.pack('<IQQ', 3, 0, 1) + struct.pack('<Q', 1 << 62) + b'x' * 64,
                         'declares'),
    'huge-array.gguf': (gguf([], kvs=(ARCH, s('a') + struct.pack('<IIQ', 9, 4, 1 << 40)))[:200],
                        'declares'),
    'nested-array.gguf': (gguf([], kvs=(ARCH, s('a') + struct.pack('<IIQ', 9, 9, 1) + struct.pack('<IQ', 4, 1) + b'\0' * 4)),
                          'nested arrays'),
    'bad-alignment.gguf': (gguf([('t', [32], F32, 0)], kvs=(ARCH, s('general.alignment') + struct.pack('<II', 4, 3)), data=128),
                           'not a power of two'),
    'duplicate-key.gguf': (gguf([], kvs=(ARCH, ARCH)), 'appears twice'),
    'duplicate-tensor.gguf': (gguf([('t', [8], F32, 0), ('t', [8], F32, 32)], data=64), 'appears twice'),
    'five-dims.gguf': (gguf([('t', [1, 1, 1, 1, 1], F32, 0)]), '5 dimensions'),
    'bad-bool.gguf': (gguf([], kvs=(ARCH, s('b') + struct.pack('<I', 7) + b'\x07')), 'bool byte 7'),
    'unknown-value-type.gguf': (gguf([], kvs=(ARCH, s('v') + struct.pack('<I', 99) + b'\0' * 8)), 'unknown value type 99'),
    'offset-past-end.gguf': (gguf([('t', [8], F32, 1 << 63)]), 'truncated'),
    'misaligned-offset.gguf': (gguf([('t', [8], F32, 3)], data=64), 'not aligned'),
    'zero-dim.gguf': (gguf([('t', [0], F32, 0)]), 'no elements'),
    'partial-block.gguf': (gguf([('t', [33], Q8_0, 0)], data=64), 'not a multiple'),
    'duplicate-token.gguf': (gguf([], kvs=(ARCH, s('tokenizer.ggml.tokens') + struct.pack('<IIQ', 9, 8, 2) + s('a') + s('a'))),
                             'repeats an earlier token'),
    'short-scores.gguf': (gguf([], kvs=(ARCH, s('tokenizer.ggml.tokens') + struct.pack('<IIQ', 9, 8, 2) + s('a') + s('b'),
                                       s('tokenizer.ggml.scores') + struct.pack('<IIQ', 9, 6, 1) + struct.pack('<f', 0.5))),
                          'at least 2 f32'),
    'u8-token-types.gguf': (gguf([], kvs=(ARCH, s('tokenizer.ggml.tokens') + struct.pack('<IIQ', 9, 8, 2) + s('a') + s('b'),
                                         s('tokenizer.ggml.token_type') + struct.pack('<IIQ', 9, 0, 2) + b'\x01\x01')),
                            'at least 2 i32'),
    'zero-layers.gguf': (gguf([], kvs=(ARCH, s('llama.block_count') + struct.pack('<II', 4, 0))), 'takes 1 to 512 layers'),
    'too-many-experts.gguf': (gguf([], kvs=(ARCH, s('llama.expert_count') + struct.pack('<II', 4, 4096))), 'at most 1024'),
    'nul-duplicate-token.gguf': (gguf([], kvs=(ARCH, s('tokenizer.ggml.tokens') + struct.pack('<IIQ', 9, 8, 2) + s('ab') + s('ab\0c'))),
                                 'repeats an earlier token'),
    'type-99.gguf': (gguf([('t', [32], 99, 0)], data=128), 'unsupported tensor type id 99'),
}
with open('EXPECTED.txt', 'w') as manifest:
    manifest.write('# FILE<TAB>what the error must say (written by make-corpus.py)\n')
    for name, (data, needle) in sorted(cases.items()):
        with open(name, 'wb') as f:
            f.write(data)
        manifest.write(f'{name}\t{needle}\n')
print(len(cases), 'files')
