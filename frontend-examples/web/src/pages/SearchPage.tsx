import { NetworkStatus } from '@apollo/client';
import { useQuery } from '@apollo/client/react';
import { useState, type FormEvent } from 'react';
import { Field, FormError, Money, Spinner } from '../components/ui';
import { mapErrors } from '../errors/mapErrors';
import { SearchPropertiesDocument, type PropertyFilter, type PropertySort } from '../gql/graphql';
import { AMENITIES, amenityLabel, isDate, toMinor } from '../lib/format';
import { Link, navigate, useLocation } from '../router';

const PAGE = 4;
const SORTS: { value: PropertySort; label: string }[] = [
  { value: 'NEWEST', label: 'Newest' },
  { value: 'PRICE_ASC', label: 'Price: low to high' },
  { value: 'PRICE_DESC', label: 'Price: high to low' },
];

/** The search lives in the URL (shareable, back button works); the form edits a copy. */
function filterFromQuery(q: URLSearchParams): { filter: PropertyFilter; sort: PropertySort } {
  const filter: PropertyFilter = {};
  const city = q.get('city')?.trim();
  if (city) filter.city = city;
  const from = q.get('from');
  const to = q.get('to');
  if (isDate(from) && isDate(to)) {
    filter.availableFrom = from;
    filter.availableTo = to;
  }
  const guests = Number(q.get('guests'));
  if (guests > 0) filter.guests = guests;
  // Price bounds are typed in whole units and sent in minor units (cents).
  const min = q.get('min');
  const max = q.get('max');
  if (min) filter.minPrice = toMinor(Number(min));
  if (max) filter.maxPrice = toMinor(Number(max));
  const amenities = q.getAll('amenity');
  if (amenities.length) filter.amenities = amenities;
  const sort = (q.get('sort') as PropertySort | null) ?? 'NEWEST';
  return { filter, sort };
}

export function SearchPage() {
  const loc = useLocation();
  const { filter, sort } = filterFromQuery(loc.query);
  const [form, setForm] = useState(() => ({
    city: loc.query.get('city') ?? '',
    from: loc.query.get('from') ?? '',
    to: loc.query.get('to') ?? '',
    guests: loc.query.get('guests') ?? '',
    min: loc.query.get('min') ?? '',
    max: loc.query.get('max') ?? '',
    amenities: loc.query.getAll('amenity'),
    sort,
  }));

  const { data, error, loading, fetchMore, networkStatus } = useQuery(SearchPropertiesDocument, {
    variables: { filter, sort, first: PAGE },
    notifyOnNetworkStatusChange: true,
  });
  const errors = mapErrors(error, 'search', { availableFrom: 'from', availableTo: 'to', minPrice: 'min', maxPrice: 'max' });

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const q = new URLSearchParams();
    if (form.city.trim()) q.set('city', form.city.trim());
    if (form.from) q.set('from', form.from);
    if (form.to) q.set('to', form.to);
    if (form.guests) q.set('guests', form.guests);
    if (form.min) q.set('min', form.min);
    if (form.max) q.set('max', form.max);
    form.amenities.forEach((a) => q.append('amenity', a));
    if (form.sort !== 'NEWEST') q.set('sort', form.sort);
    navigate(`/?${q}`);
  };

  const set = (k: keyof typeof form) => (e: { target: { value: string } }) => setForm({ ...form, [k]: e.target.value });
  const toggle = (a: string) =>
    setForm({ ...form, amenities: form.amenities.includes(a) ? form.amenities.filter((x) => x !== a) : [...form.amenities, a] });

  const conn = data?.properties;
  const stay = new URLSearchParams();
  if (filter.availableFrom && filter.availableTo) {
    stay.set('checkIn', filter.availableFrom);
    stay.set('checkOut', filter.availableTo);
  }
  if (filter.guests) stay.set('guests', String(filter.guests));

  return (
    <section className="search">
      <h1>Find a stay</h1>
      <form className="search-form" onSubmit={submit} aria-label="Search">
        <Field label="City" name="city" error={errors.fields.city}>
          <input id="f-city" name="city" value={form.city} onChange={set('city')} placeholder="Lisbon" />
        </Field>
        <Field label="Check-in" name="from" error={errors.fields.from}>
          <input id="f-from" name="from" type="date" value={form.from} onChange={set('from')} />
        </Field>
        <Field label="Check-out" name="to" error={errors.fields.to}>
          <input id="f-to" name="to" type="date" value={form.to} onChange={set('to')} />
        </Field>
        <Field label="Guests" name="guests" error={errors.fields.guests}>
          <input id="f-guests" name="guests" type="number" min={1} value={form.guests} onChange={set('guests')} />
        </Field>
        <Field label="Min / night" name="min" error={errors.fields.min}>
          <input id="f-min" name="min" type="number" min={0} value={form.min} onChange={set('min')} />
        </Field>
        <Field label="Max / night" name="max" error={errors.fields.max}>
          <input id="f-max" name="max" type="number" min={0} value={form.max} onChange={set('max')} />
        </Field>
        <Field label="Sort" name="sort">
          <select id="f-sort" name="sort" value={form.sort} onChange={set('sort')}>
            {SORTS.map((s) => (
              <option key={s.value} value={s.value}>
                {s.label}
              </option>
            ))}
          </select>
        </Field>
        <fieldset className="amenities">
          <legend>Amenities</legend>
          {AMENITIES.map((a) => (
            <label key={a} className="chip">
              <input type="checkbox" name="amenity" value={a} checked={form.amenities.includes(a)} onChange={() => toggle(a)} />
              {amenityLabel(a)}
            </label>
          ))}
        </fieldset>
        <button type="submit">Search</button>
      </form>

      <FormError message={errors.form} />
      {loading && !conn ? <Spinner /> : null}
      {conn ? (
        <>
          <p className="total" data-testid="search-total">
            {conn.totalCount} {conn.totalCount === 1 ? 'stay' : 'stays'}
          </p>
          <ul className="cards" data-testid="results">
            {conn.edges.map(({ node: p }) => (
              <li key={p.id} className="card" data-testid="result">
                <Link to={`/listing/${p.id}${stay.size ? `?${stay}` : ''}`}>
                  <h3>{p.title}</h3>
                </Link>
                <p className="muted">
                  {p.address.city}, {p.address.country} · sleeps {p.maxGuests} · {p.bedrooms} bedroom{p.bedrooms === 1 ? '' : 's'}
                  {p.category ? ` · ${p.category.name}` : ''}
                </p>
                <p>
                  <Money value={p.nightlyRate} /> / night · hosted by {p.host.displayName}
                </p>
                <p className="amenity-list">{p.amenities.map(amenityLabel).join(' · ')}</p>
              </li>
            ))}
          </ul>
          {conn.pageInfo.hasNextPage ? (
            <button
              type="button"
              className="secondary"
              disabled={networkStatus === NetworkStatus.fetchMore}
              onClick={() => fetchMore({ variables: { after: conn.pageInfo.endCursor } })}
            >
              {networkStatus === NetworkStatus.fetchMore ? 'Loading…' : 'Show more'}
            </button>
          ) : null}
        </>
      ) : null}
    </section>
  );
}
