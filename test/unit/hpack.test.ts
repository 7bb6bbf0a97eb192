// HPACK (src/core/server/h2js/): the decoder against RFC 7541 Appendix C (C.2 single representations, C.3 and
// C.4 a request sequence sharing one dynamic table, raw and Huffman-coded, C.5 responses with a 256-byte
// table and evictions), its refusals, and our encoder (static indexes and literals, never the dynamic table).
import { describe, expect, it } from 'vitest'
import { CompressionError, HpackDecoder } from '../../src/core/server/h2js/hpack-decoder.js'
import { encodeHeaders } from '../../src/core/server/h2js/hpack-encoder.js'
import { huffmanDecode } from '../../src/core/server/h2js/hpack-huffman.js'

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex')

function decodeSequence(limit: number, blocks: { block: string; headers: Record<string, string>; tableSize: number }[]): void {
  const decoder = new HpackDecoder(limit)
  for (const step of blocks) {
    const decoded = decoder.decode(hex(step.block))
    expect({ ...decoded.headers }).toEqual(step.headers)
    expect(decoder.tableSize).toBe(step.tableSize)
    expect(decoded.malformed).toBeUndefined()
  }
}

const REQUEST_1 = { ':method': 'GET', ':scheme': 'http', ':path': '/', ':authority': 'www.example.com' }
const REQUEST_2 = { ...REQUEST_1, 'cache-control': 'no-cache' }
const REQUEST_3 = { ':method': 'GET', ':scheme': 'https', ':path': '/index.html', ':authority': 'www.example.com', 'custom-key': 'custom-value' }

describe('HPACK decoder, RFC 7541 Appendix C', () => {
  it('C.2: a literal with indexing enters the table; without indexing and never-indexed do not; an index reads the static table', () => {
    decodeSequence(4096, [{ block: '400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572', headers: { 'custom-key': 'custom-header' }, tableSize: 55 }])
    decodeSequence(4096, [{ block: '040c 2f73 616d 706c 652f 7061 7468', headers: { ':path': '/sample/path' }, tableSize: 0 }])
    decodeSequence(4096, [{ block: '1008 7061 7373 776f 7264 0673 6563 7265 74', headers: { password: 'secret' }, tableSize: 0 }])
    decodeSequence(4096, [{ block: '82', headers: { ':method': 'GET' }, tableSize: 0 }])
  })

  it('C.3: three requests without Huffman coding share the dynamic table', () => {
    decodeSequence(4096, [
      { block: '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d', headers: REQUEST_1, tableSize: 57 },
      { block: '8286 84be 5808 6e6f 2d63 6163 6865', headers: REQUEST_2, tableSize: 110 },
      { block: '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65', headers: REQUEST_3, tableSize: 164 },
    ])
  })

  it('C.4: the same requests with Huffman-coded strings', () => {
    decodeSequence(4096, [
      { block: '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff', headers: REQUEST_1, tableSize: 57 },
      { block: '8286 84be 5886 a8eb 1064 9cbf', headers: REQUEST_2, tableSize: 110 },
      { block: '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf', headers: REQUEST_3, tableSize: 164 },
    ])
  })

  it('C.5: responses through a 256-byte table evict the oldest entries', () => {
    const location = 'https://www.example.com'
    decodeSequence(256, [
      {
        block:
          '4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
        headers: { ':status': '302', 'cache-control': 'private', date: 'Mon, 21 Oct 2013 20:13:21 GMT', location },
        tableSize: 222,
      },
      {
        block: '4803 3330 37c1 c0bf',
        headers: { ':status': '307', 'cache-control': 'private', date: 'Mon, 21 Oct 2013 20:13:21 GMT', location },
        tableSize: 222,
      },
      {
        block:
          '88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31',
        headers: {
          ':status': '200',
          'cache-control': 'private',
          date: 'Mon, 21 Oct 2013 20:13:22 GMT',
          location,
          'content-encoding': 'gzip',
          'set-cookie': 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1',
        },
        tableSize: 215,
      },
    ])
  })
})

describe('HPACK decoder refusals', () => {
  it('refuses an index beyond both tables, a size update above our setting or after a header, and a truncated string', () => {
    expect(() => new HpackDecoder(4096).decode(hex('be'))).toThrow(CompressionError)
    expect(() => new HpackDecoder(4096).decode(hex('3fe21f'))).toThrow(/4097 above 4096/) // a size update to 31 + 0x62 + (0x1f << 7)
    expect(() => new HpackDecoder(4096).decode(hex('82 20'))).toThrow(/after a header/)
    expect(() => new HpackDecoder(4096).decode(hex('040c 2f73'))).toThrow(/beyond the block/)
  })

  it('refuses Huffman padding that is not EOS bits and padding of 8 bits or more', () => {
    // 'a' is 00011 (5 bits): padded with 111 is valid, with 000 is not.
    expect(huffmanDecode(Buffer.from([0b00011111]), 0, 1)).toBe('a')
    expect(() => huffmanDecode(Buffer.from([0b00011000]), 0, 1)).toThrow(/padding/)
    expect(() => huffmanDecode(Buffer.from([0b00011111, 0xff]), 0, 2)).toThrow(/padding/)
  })

  it('flags upper-case names and pseudo-headers after regular ones as malformed, without failing the block', () => {
    const decoder = new HpackDecoder(4096)
    expect(decoder.decode(hex('0003 782d 6101 31')).malformed).toBeUndefined() // "x-a: 1"
    expect(decoder.decode(hex('0003 582d 4101 31')).malformed).toMatch(/upper-case/) // "X-A: 1"
    expect(decoder.decode(Buffer.concat([hex('0003 782d 6101 31'), hex('82')])).malformed).toMatch(/pseudo-header/)
  })
})

describe('HPACK encoder', () => {
  it('indexes exact static matches, names the static entry otherwise, and never touches a dynamic table', () => {
    const block = encodeHeaders({ 'content-type': 'application/grpc+proto', ':status': 200, 'grpc-status': 0, 'grpc-message': 'a b%20' })
    expect(block[0]).toBe(0x88) // :status 200, static index 8, first although given second
    const decoder = new HpackDecoder(4096)
    const decoded = decoder.decode(block)
    expect({ ...decoded.headers }).toEqual({ ':status': '200', 'content-type': 'application/grpc+proto', 'grpc-status': '0', 'grpc-message': 'a b%20' })
    expect(decoder.tableSize).toBe(0)
    // A long value needs a multi-byte length.
    const long = 'x'.repeat(300)
    expect(new HpackDecoder(4096).decode(encodeHeaders({ 'grpc-message': long })).headers['grpc-message']).toBe(long)
  })
})
