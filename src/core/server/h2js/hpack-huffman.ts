// HPACK's Huffman code (RFC 7541 Appendix B) for decoding header strings. The code is canonical: the code
// lengths alone determine every code (symbols ordered by length, then value, take consecutive codes), so
// the table below is just the 257 lengths (256 octets and EOS) and the codes are derived once at load.
// Header strings are short and decoded once per request, so a bit-at-a-time canonical decoder is enough.

/** Code length in bits of each symbol 0..255, then EOS (256). */
const CODE_LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
]

const EOS = 256
const MAX_LENGTH = 30

/** Symbols in canonical order; per length: its first code, and where its symbols start in SYMBOLS. */
const SYMBOLS = new Uint16Array(257)
const FIRST_CODE = new Int32Array(MAX_LENGTH + 2)
const FIRST_INDEX = new Int32Array(MAX_LENGTH + 2)
const COUNT = new Int32Array(MAX_LENGTH + 2)

{
  const order = CODE_LENGTHS.map((length, symbol) => ({ length, symbol })).sort((a, b) => a.length - b.length || a.symbol - b.symbol)
  let code = 0
  let length = order[0]!.length
  for (let i = 0; i < order.length; i++) {
    const entry = order[i]!
    code <<= entry.length - length
    length = entry.length
    if (COUNT[length] === 0) {
      FIRST_CODE[length] = code
      FIRST_INDEX[length] = i
    }
    COUNT[length]!++
    SYMBOLS[i] = entry.symbol
    code++
  }
}

export class HuffmanError extends Error {}

/** The octets a Huffman-coded string stands for (as a latin1 string: header octets, one char each). */
export function huffmanDecode(input: Uint8Array, start: number, end: number): string {
  const out: number[] = []
  let code = 0
  let length = 0
  let ones = true // the bits since the last symbol were all 1: a valid padding so far
  for (let i = start; i < end; i++) {
    const octet = input[i]!
    for (let bit = 7; bit >= 0; bit--) {
      const b = (octet >> bit) & 1
      code = (code << 1) | b
      length++
      ones &&= b === 1
      if (length > MAX_LENGTH) throw new HuffmanError('Huffman code longer than any symbol')
      const offset = code - FIRST_CODE[length]!
      if (COUNT[length]! > 0 && offset >= 0 && offset < COUNT[length]!) {
        const symbol = SYMBOLS[FIRST_INDEX[length]! + offset]!
        if (symbol === EOS) throw new HuffmanError('EOS in a Huffman-coded string')
        out.push(symbol)
        code = 0
        length = 0
        ones = true
      }
    }
  }
  // Padding: fewer than 8 bits, the most significant bits of EOS (all ones) (RFC 7541 §5.2).
  if (length > 7 || !ones) throw new HuffmanError('invalid Huffman padding')
  return String.fromCharCode(...out)
}
