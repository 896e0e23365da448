import XCTest

@testable import CortexWeb

final class HTTPParserTests: XCTestCase {
  func parse(_ s: String) -> HTTPRequestParser.Next {
    var p = HTTPRequestParser()
    p.append(Array(s.utf8))
    return p.next()
  }

  func testParsesARequestWithQueryAndBody() {
    guard case .request(let r) = parse("POST /api/tasks%2Fx?q=a+b&state=queued HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}") else {
      return XCTFail("not parsed")
    }
    XCTAssertEqual(r.method, "POST")
    XCTAssertEqual(r.path, "/api/tasks/x")
    XCTAssertEqual(r.param("q"), "a b")
    XCTAssertEqual(r.param("state"), "queued")
    XCTAssertEqual(r.body, Array("{}".utf8))
    XCTAssertTrue(r.keepAlive)
  }

  func testWaitsForTheWholeRequestAndKeepsPipelinedOnes() {
    var p = HTTPRequestParser()
    p.append(Array("GET / HTTP/1.1\r\nHost: h\r\n".utf8))
    guard case .incomplete = p.next() else { return XCTFail("a partial head is not a request") }
    p.append(Array("\r\nGET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n".utf8))
    guard case .request(let a) = p.next(), case .request(let b) = p.next() else { return XCTFail("two requests expected") }
    XCTAssertEqual(a.path, "/")
    XCTAssertEqual(b.path, "/b")
    XCTAssertFalse(b.keepAlive)
    guard case .incomplete = p.next() else { return XCTFail("nothing left") }
  }

  func testRefusesMalformedAndOversizedRequests() {
    let cases: [(String, Int)] = [
      ("GARBAGE\r\n\r\n", 400),
      ("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505),
      ("GET / HTTP/1.1\r\n\r\n", 400),  // no Host
      ("GET http://x/ HTTP/1.1\r\nHost: h\r\n\r\n", 400),
      ("GET / HTTP/1.1\r\nHost: h\r\nBad Header\r\n\r\n", 400),
      ("GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n", 400),
      ("GET /%00 HTTP/1.1\r\nHost: h\r\n\r\n", 400),
      ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
      ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400),
      ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
      ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999\r\n\r\n", 413),
      ("GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "a", count: 20_000) + "\r\n\r\n", 431),
      ("GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "a", count: 20_000), 431),
    ]
    for (text, status) in cases {
      guard case .failure(let f) = parse(text) else {
        XCTFail("accepted: \(text.prefix(60))")
        continue
      }
      XCTAssertEqual(f.status, status, "\(text.prefix(60)): \(f.message)")
    }
  }
}
