import Testing
@testable import GridletCore

@Suite struct JSONTests {
    @Test(arguments: [
        #"null"#, #"true"#, #"false"#, #"0"#, #"-1"#, #"1.5"#, #"-0.25"#, #""""#, #""abc""#,
        #"[]"#, #"{}"#, #"[1,2,[3,{"a":null}]]"#, #"{"b":1,"a":2,"c":{"z":[true,false]}}"#,
        #""a\"b\\c\nd\re\tf""#, #""\u0001\u001f""#,
    ])
    func roundTrip(text: String) throws {
        let v = try JSONValue.parse(text)
        #expect(v.serialized == text)
        #expect(try JSONValue.parse(v.serialized) == v)
    }

    @Test func keysKeepDocumentOrder() throws {
        let v = try JSONValue.parse(#" { "z" : 1 , "a" : [ 1 , 2 ] , "m" : "x" } "#)
        #expect(v.objectValue?.map(\.0) == ["z", "a", "m"])
        #expect(v["a"] == .array([.number(1), .number(2)]))
        #expect(v.serialized == #"{"z":1,"a":[1,2],"m":"x"}"#)
    }

    @Test(arguments: [
        (#""\"""#, "\""), (#""\\""#, "\\"), (#""\/""#, "/"), (#""\b""#, "\u{08}"), (#""\f""#, "\u{0C}"),
        (#""\n""#, "\n"), (#""\r""#, "\r"), (#""\t""#, "\t"), (#""\u0041""#, "A"), (#""\u00e9""#, "é"),
        (#""\u20AC""#, "€"), (#""\ud83d\ude00""#, "😀"), (#""\uD834\uDD1E""#, "𝄞"), (#""é€😀""#, "é€😀"),
    ])
    func stringEscapes(text: String, expected: String) throws {
        #expect(try JSONValue.parse(text) == .string(expected))
    }

    @Test(arguments: ["a\u{0}b", "\u{1F}", "quote\"back\\slash", "tab\tnl\ncr\r", "😀 é €", "\u{7F}\u{2028}"])
    func serializeStringRoundTrip(s: String) throws {
        let text = JSONValue.string(s).serialized
        #expect(!text.unicodeScalars.dropFirst().dropLast().contains { $0.value < 0x20 })
        #expect(try JSONValue.parse(text) == .string(s))
    }

    @Test func controlCharactersAreEscapedAsU() {
        #expect(JSONValue.string("\u{01}").serialized == #""\u0001""#)
        #expect(JSONValue.string("\u{1b}").serialized == #""\u001b""#)
    }

    @Test(arguments: [
        "", " ", "nul", "tru", "[1,]", "[1 2]", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{a:1}", "'x'",
        "01", "-01", "00", "1.", ".5", "+1", "-", "1e", "1e+", "1e400", "NaN", "Infinity",
        "\"abc", "\"a\u{01}b\"", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "\"\\u+041\"", "\"\\u-000\"",
        "\"\\ud83d\"", "\"\\ud83dx\"", "\"\\ud83d\\u0041\"", "\"\\ude00\"",
        "1 2", "{} x", "[]]", "null null", "{\"a\":1}{",
        "{\"a\":1,\"a\":2}", "{\"x\":{\"k\":1,\"k\":1}}",
    ])
    func rejects(text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(text) }
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: JSONParseError.self) { try JSONValue.parse([0x22, 0xFF, 0xFE, 0x22]) }
        #expect(throws: JSONParseError.self) { try JSONValue.parse([0x22, 0xC3, 0x22]) }
    }

    @Test func trailingGarbageReportsOffset() throws {
        let e = try #require(throws: JSONParseError.self) { try JSONValue.parse("{\"a\":1} x") }
        #expect(e.offset == 8)
    }

    static func nested(_ n: Int, inner: String = "") -> String {
        String(repeating: "[", count: n) + inner + String(repeating: "]", count: n)
    }

    @Test(arguments: [1, 2, 31, 32])
    func depthUpTo32Accepted(n: Int) throws {
        _ = try JSONValue.parse(Self.nested(n))
        _ = try JSONValue.parse(Self.nested(n, inner: "1"))
        _ = try JSONValue.parse(Self.nested(n - 1, inner: "{\"a\":1}"))
    }

    @Test(arguments: [33, 34, 100, 10_000])
    func depthOver32Rejected(n: Int) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(Self.nested(n)) }
        #expect(throws: JSONParseError.self) { try JSONValue.parse(Self.nested(n, inner: "1")) }
        #expect(throws: JSONParseError.self) {
            try JSONValue.parse(String(repeating: "{\"a\":", count: n) + "1" + String(repeating: "}", count: n))
        }
    }

    @Test(arguments: [
        (0.0, "0"), (-0.0, "0"), (1.0, "1"), (-7.0, "-7"), (4140.0, "4140"), (1_800_000_000_000.0, "1800000000000"),
        (1.5, "1.5"), (-0.25, "-0.25"), (0.1, "0.1"), (230.123456, "230.123456"), (1.0000001, "1"),
        (0.1 + 0.2, "0.3"), (49.9999999, "50"),
    ])
    func numberFormatting(value: Double, expected: String) {
        #expect(JSONValue.format(value) == expected)
    }

    @Test(arguments: [Double.nan, .infinity, -.infinity])
    func nonFiniteFormatsAsNull(value: Double) {
        #expect(JSONValue.format(value) == "null")
    }

    @Test(arguments: [1e16, -1e16, 1e20, 1e300, 1e303, -1.7e308, Double.greatestFiniteMagnitude, 123.456, 1e-3, 2.5e-6])
    func formattedNumbersAreValidJSON(value: Double) throws {
        let text = JSONValue.format(value)
        let back = try #require(try JSONValue.parse(text).doubleValue, "\(text)")
        #expect(abs(back - value) <= max(abs(value) * 1e-12, 1e-6), "\(text)")
    }

    @Test(arguments: ["0", "-0", "1e3", "1E+3", "2.5e-1", "-12.75", "123456789012"])
    func parsesNumbers(text: String) throws {
        let v = try #require(try JSONValue.parse(text).doubleValue)
        #expect(v == Double(text))
    }

    @Test func accessors() throws {
        let v = try JSONValue.parse(#"{"s":"x","n":2,"b":true,"a":[],"o":{},"z":null}"#)
        #expect(v["s"]?.stringValue == "x")
        #expect(v["n"]?.doubleValue == 2)
        #expect(v["b"]?.boolValue == true)
        #expect(v["a"]?.arrayValue == [])
        #expect(v["o"]?.objectValue?.isEmpty == true)
        #expect(v["z"] == .null)
        #expect(v["missing"] == nil)
        #expect(v["s"]?.doubleValue == nil)
        #expect(JSONValue.array([])["s"] == nil)
    }

    @Test func objectEqualityIsOrderSensitive() {
        let a = JSONValue.object([("a", .number(1)), ("b", .number(2))])
        let b = JSONValue.object([("b", .number(2)), ("a", .number(1))])
        #expect(a != b)
        #expect(a == .object([("a", .number(1)), ("b", .number(2))]))
        #expect(JSONValue.number(1) != .string("1"))
    }
}
