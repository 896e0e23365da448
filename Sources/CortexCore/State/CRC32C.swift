/// CRC-32C (Castagnoli), slicing-by-8, as used by the hot-state header.
public enum CRC32C {
  static let tables: [[UInt32]] = {
    var t = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 8)
    for i in 0..<256 {
      var c = UInt32(i)
      for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
      t[0][i] = c
    }
    for i in 0..<256 {
      for k in 1..<8 { t[k][i] = (t[k - 1][i] >> 8) ^ t[0][Int(t[k - 1][i] & 0xFF)] }
    }
    return t
  }()

  public static func checksum(_ p: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
    var crc = ~seed
    let t = tables
    var i = 0
    let n = p.count
    t[0].withUnsafeBufferPointer { t0 in
      t[1].withUnsafeBufferPointer { t1 in
        t[2].withUnsafeBufferPointer { t2 in
          t[3].withUnsafeBufferPointer { t3 in
            t[4].withUnsafeBufferPointer { t4 in
              t[5].withUnsafeBufferPointer { t5 in
                t[6].withUnsafeBufferPointer { t6 in
                  t[7].withUnsafeBufferPointer { t7 in
                    while n - i >= 8 {
                      let lo = p.loadUnaligned(fromByteOffset: i, as: UInt32.self).littleEndian ^ crc
                      let hi = p.loadUnaligned(fromByteOffset: i + 4, as: UInt32.self).littleEndian
                      crc =
                        t7[Int(lo & 0xFF)] ^ t6[Int((lo >> 8) & 0xFF)] ^ t5[Int((lo >> 16) & 0xFF)]
                        ^ t4[Int(lo >> 24)] ^ t3[Int(hi & 0xFF)] ^ t2[Int((hi >> 8) & 0xFF)]
                        ^ t1[Int((hi >> 16) & 0xFF)] ^ t0[Int(hi >> 24)]
                      i += 8
                    }
                    while i < n {
                      crc = t0[Int((crc ^ UInt32(p[i])) & 0xFF)] ^ (crc >> 8)
                      i += 1
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
    return ~crc
  }

  public static func checksum(_ bytes: [UInt8]) -> UInt32 {
    bytes.withUnsafeBytes { checksum($0) }
  }
}
