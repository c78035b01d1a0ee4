import { addDays, addMonths } from '../lib/format';

interface Range {
  start: string;
  end: string;
}

const WEEKDAYS = ['Mo', 'Tu', 'We', 'Th', 'Fr', 'Sa', 'Su'];

/** Month grids from `from` (a first of month): booked nights struck out, the stay highlighted. */
export function Calendar({
  from,
  months,
  booked,
  today,
  checkIn,
  checkOut,
  onPick,
}: {
  from: string;
  months: number;
  booked: readonly Range[];
  today: string;
  checkIn: string | null;
  checkOut: string | null;
  onPick: (day: string) => void;
}) {
  const isBooked = (d: string) => booked.some((r) => r.start <= d && d < r.end);
  return (
    <div className="calendar" data-testid="calendar">
      {Array.from({ length: months }, (_, m) => {
        const first = addMonths(from, m);
        const next = addMonths(first, 1);
        const lead = (new Date(`${first}T00:00:00Z`).getUTCDay() + 6) % 7;
        const days: string[] = [];
        for (let d = first; d < next; d = addDays(d, 1)) days.push(d);
        const title = new Intl.DateTimeFormat('en', { month: 'long', year: 'numeric', timeZone: 'UTC' }).format(
          new Date(`${first}T00:00:00Z`),
        );
        return (
          <div className="month" key={first}>
            <h4>{title}</h4>
            <div className="grid">
              {WEEKDAYS.map((w) => (
                <span key={w} className="weekday">
                  {w}
                </span>
              ))}
              {Array.from({ length: lead }, (_, i) => (
                <span key={`pad-${i}`} />
              ))}
              {days.map((d) => {
                const taken = isBooked(d);
                const past = d <= today;
                const inStay = checkIn !== null && (checkOut ? checkIn <= d && d < checkOut : d === checkIn);
                return (
                  <button
                    type="button"
                    key={d}
                    className={`day${taken ? ' booked' : ''}${inStay ? ' selected' : ''}${past ? ' past' : ''}`}
                    data-testid={`day-${d}`}
                    data-booked={taken ? 'true' : undefined}
                    disabled={past}
                    title={taken ? `${d}: booked` : d}
                    onClick={() => onPick(d)}
                  >
                    {Number(d.slice(8))}
                  </button>
                );
              })}
            </div>
          </div>
        );
      })}
    </div>
  );
}
