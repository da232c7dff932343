// Money is shown from the API's decimal strings ("12.50"), never through a float: the string
// goes to Intl.NumberFormat as it is (a string keeps every digit).
const formats = new Map<string, Intl.NumberFormat>();

export function money(amount: string, currency: string): string {
  let format = formats.get(currency);
  if (!format) {
    format = new Intl.NumberFormat(undefined, { style: "currency", currency });
    formats.set(currency, format);
  }
  return format.format(amount as Intl.StringNumericLiteral);
}
