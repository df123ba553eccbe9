/// Why an option value was refused, in words.
struct OptionValueError: Error {
    let message: String
}

/// Checks one option value against its ``OptionDefinition`` and normalizes it for printing.
public enum OptionValueParser {

    /// Parses `1024`, `40M`, `512k`, `8s` into an amount in units of `unitBytes` bytes.
    public static func number(_ text: String, unitBytes: Int64) -> Int64? {
        var digits = Substring(text)
        var multiplier: Int64 = 1
        var suffixed = false
        if let last = digits.last, last.isLetter {
            suffixed = true
            switch last {
            case "k", "K": multiplier = 1 << 10
            case "m", "M": multiplier = 1 << 20
            case "g", "G": multiplier = 1 << 30
            case "s", "S": multiplier = 512
            default: return nil
            }
            digits = digits.dropLast()
        }
        var negative = false
        if digits.first == "-" {
            negative = true
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let magnitude = Int64(digits) else { return nil }
        let value = negative ? -magnitude : magnitude
        guard suffixed else { return value }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { return nil }
        return bytes / unitBytes
    }

    /// Returns the value to store for `definition`, or the reason it is refused.
    static func check(_ definition: OptionDefinition, value: String) -> Result<String, OptionValueError> {
        switch definition.kind {
        case .boolean:
            switch value {
            case "yes", "no": return .success(value)
            default: return .failure(OptionValueError(message: "'\(definition.name)' takes yes or no, not '\(value)'"))
            }
        case .choice(let words):
            guard words.contains(value) else {
                return .failure(OptionValueError(message: "'\(value)' is not a valid value for '\(definition.name)': expected one of \(words.joined(separator: ", "))"))
            }
            return .success(value)
        case .choiceOrNumber(let words, let range):
            if words.contains(value) { return .success(value) }
            guard let amount = Int64(value), range.contains(amount) else {
                return .failure(OptionValueError(message: "'\(value)' is not a valid value for '\(definition.name)': expected \(words.joined(separator: ", ")) or a number \(range.lowerBound)..\(range.upperBound)"))
            }
            return .success(value)
        case .number(let range, let unitBytes, let unit):
            guard let amount = number(value, unitBytes: unitBytes) else {
                return .failure(OptionValueError(message: "'\(value)' is not a number for '\(definition.name)' (expected \(range.lowerBound)..\(range.upperBound) \(unit), optionally with a K, M or G suffix)"))
            }
            guard range.contains(amount) else {
                let side = amount < range.lowerBound ? "too small" : "too big"
                return .failure(OptionValueError(message: "value \(value) for '\(definition.name)' is \(side): allowed range is \(range.lowerBound)..\(range.upperBound) \(unit)"))
            }
            return .success(value)
        case .text(let maxLength):
            guard value.utf8.count <= maxLength else {
                return .failure(OptionValueError(message: "value for '\(definition.name)' is \(value.utf8.count) bytes long, longer than the allowed \(maxLength)"))
            }
            return .success(value)
        }
    }
}
