import { useMutation, useQuery } from '@apollo/client/react';
import { useState, type FormEvent } from 'react';
import { prependToConnection } from '../apollo/cacheUpdates';
import { useAuth } from '../auth/AuthProvider';
import { Field, FormError } from '../components/ui';
import { mapErrors, type FormErrors } from '../errors/mapErrors';
import { CategoriesDocument, CreatePropertyDocument, type CancellationPolicy, type PropertyStatus } from '../gql/graphql';
import { AMENITIES, amenityLabel, toMinor } from '../lib/format';
import { settle } from '../lib/mutate';
import { navigate } from '../router';

const CURRENCIES = ['EUR', 'USD', 'GBP', 'CHF', 'JPY'];
const FIELDS = ['title', 'description', 'line1', 'city', 'region', 'postalCode', 'country', 'nightlyRate', 'currency', 'maxGuests', 'bedrooms', 'amenities', 'categoryId', 'cancellationPolicy', 'status'];

export function HostNewPage() {
  const { session, tokens } = useAuth();
  const categories = useQuery(CategoriesDocument);
  const [create, { loading }] = useMutation(CreatePropertyDocument);
  const [errors, setErrors] = useState<FormErrors | null>(null);
  const [f, setF] = useState({
    title: '',
    description: '',
    line1: '',
    city: '',
    region: '',
    postalCode: '',
    country: '',
    rate: '100',
    currency: 'EUR',
    maxGuests: '2',
    bedrooms: '1',
    amenities: [] as string[],
    categoryId: '',
    cancellationPolicy: 'MODERATE' as CancellationPolicy,
    status: 'PUBLISHED' as PropertyStatus,
  });
  const set = (k: keyof typeof f) => (e: { target: { value: string } }) => setF({ ...f, [k]: e.target.value });

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setErrors(null);
    const { data, error } = await settle(() =>
      create({
        variables: {
          input: {
            title: f.title,
            description: f.description || undefined,
            address: {
              line1: f.line1,
              city: f.city,
              region: f.region || undefined,
              postalCode: f.postalCode || undefined,
              country: f.country.toUpperCase(),
            },
            nightlyRate: { amount: toMinor(Number(f.rate), f.currency), currency: f.currency },
            maxGuests: Number(f.maxGuests),
            bedrooms: Number(f.bedrooms),
            amenities: f.amenities,
            categoryId: f.categoryId || undefined,
            cancellationPolicy: f.cancellationPolicy,
            status: f.status,
          },
        },
        // The new listing joins "My listings" if it is cached; nothing is refetched.
        update: (cache, { data: d }) => {
          const ref = d?.createProperty && cache.identify(d.createProperty);
          if (ref && session) prependToConnection(cache, { __typename: 'User', id: session.userId }, 'properties', 'PropertyEdge', { __ref: ref });
        },
      }),
    );
    if (!data?.createProperty) {
      setErrors(mapErrors(error, 'generic', {}, FIELDS));
      return;
    }
    // Listing makes the user a HOST; the role is in the next token. Refresh now: the payload's
    // user (role HOST) lands in the cache and the header shows it.
    try {
      await tokens.refreshNow();
    } catch {
      // the next refresh will carry it
    }
    navigate('/host/listings');
  };

  const err = (k: string) => errors?.fields[k];
  return (
    <section>
      <h1>List a property</h1>
      <form className="stack" onSubmit={submit} aria-label="List a property">
        <Field label="Title" name="title" error={err('title')}>
          <input id="f-title" name="title" required value={f.title} onChange={set('title')} />
        </Field>
        <Field label="Description" name="description" error={err('description')}>
          <textarea id="f-description" name="description" rows={4} value={f.description} onChange={set('description')} />
        </Field>
        <div className="cols">
          <Field label="Street" name="line1" error={err('line1')}>
            <input id="f-line1" name="line1" required value={f.line1} onChange={set('line1')} />
          </Field>
          <Field label="City" name="city" error={err('city')}>
            <input id="f-city" name="city" required value={f.city} onChange={set('city')} />
          </Field>
          <Field label="Region" name="region" error={err('region')}>
            <input id="f-region" name="region" value={f.region} onChange={set('region')} />
          </Field>
          <Field label="Postal code" name="postalCode" error={err('postalCode')}>
            <input id="f-postalCode" name="postalCode" value={f.postalCode} onChange={set('postalCode')} />
          </Field>
          <Field label="Country (ISO code)" name="country" error={err('country')}>
            <input id="f-country" name="country" required maxLength={2} placeholder="PT" value={f.country} onChange={set('country')} />
          </Field>
        </div>
        <div className="cols">
          <Field label="Nightly rate" name="nightlyRate" error={err('nightlyRate')}>
            <input id="f-nightlyRate" name="nightlyRate" type="number" min={0} step="0.01" value={f.rate} onChange={set('rate')} />
          </Field>
          <Field label="Currency" name="currency" error={err('currency')}>
            <select id="f-currency" name="currency" value={f.currency} onChange={set('currency')}>
              {CURRENCIES.map((c) => (
                <option key={c}>{c}</option>
              ))}
            </select>
          </Field>
          <Field label="Sleeps" name="maxGuests" error={err('maxGuests')}>
            <input id="f-maxGuests" name="maxGuests" type="number" min={1} value={f.maxGuests} onChange={set('maxGuests')} />
          </Field>
          <Field label="Bedrooms" name="bedrooms" error={err('bedrooms')}>
            <input id="f-bedrooms" name="bedrooms" type="number" min={0} value={f.bedrooms} onChange={set('bedrooms')} />
          </Field>
        </div>
        <div className="cols">
          <Field label="Category" name="categoryId" error={err('categoryId')}>
            <select id="f-categoryId" name="categoryId" value={f.categoryId} onChange={set('categoryId')}>
              <option value="">None</option>
              {categories.data?.categories.map((c) => (
                <option key={c.id} value={c.id}>
                  {c.name}
                </option>
              ))}
            </select>
          </Field>
          <Field label="Cancellation policy" name="cancellationPolicy" error={err('cancellationPolicy')}>
            <select id="f-cancellationPolicy" name="cancellationPolicy" value={f.cancellationPolicy} onChange={set('cancellationPolicy')}>
              <option value="FLEXIBLE">Flexible: full refund until 24 h before</option>
              <option value="MODERATE">Moderate: full refund until 5 days before</option>
              <option value="STRICT">Strict: half refund until 7 days before</option>
            </select>
          </Field>
          <Field label="Status" name="status" error={err('status')}>
            <select id="f-status" name="status" value={f.status} onChange={set('status')}>
              <option value="PUBLISHED">Published</option>
              <option value="DRAFT">Draft</option>
            </select>
          </Field>
        </div>
        <fieldset className="amenities">
          <legend>Amenities</legend>
          {AMENITIES.map((a) => (
            <label key={a} className="chip">
              <input
                type="checkbox"
                checked={f.amenities.includes(a)}
                onChange={() => setF({ ...f, amenities: f.amenities.includes(a) ? f.amenities.filter((x) => x !== a) : [...f.amenities, a] })}
              />
              {amenityLabel(a)}
            </label>
          ))}
          {err('amenities') ? <small className="field-error">{err('amenities')}</small> : null}
        </fieldset>
        <FormError message={errors?.form} />
        <button type="submit" disabled={loading} data-testid="create-property">
          {loading ? 'Listing…' : 'List it'}
        </button>
      </form>
    </section>
  );
}
