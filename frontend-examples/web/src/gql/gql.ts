/* eslint-disable */
import * as types from './graphql';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "fragment AuthPayloadFields on AuthPayload {\n  accessToken\n  refreshToken\n  expiresIn\n  user {\n    ...UserFields\n  }\n}": typeof types.AuthPayloadFieldsFragmentDoc,
    "subscription BookingConfirmed {\n  bookingConfirmed {\n    reservationId\n    propertyTitle\n    checkIn\n    checkOut\n    confirmedAt\n    total {\n      ...MoneyFields\n    }\n    reservation {\n      id\n    }\n  }\n}": typeof types.BookingConfirmedDocument,
    "mutation CancelReservation($id: ID!) {\n  cancelReservation(id: $id) {\n    ...ReservationFields\n  }\n}": typeof types.CancelReservationDocument,
    "query Categories {\n  categories {\n    id\n    name\n    slug\n  }\n}": typeof types.CategoriesDocument,
    "mutation CreateProperty($input: CreatePropertyInput!) {\n  createProperty(input: $input) {\n    ...PropertyCard\n    description\n    cancellationPolicy\n    createdAt\n  }\n}": typeof types.CreatePropertyDocument,
    "mutation CreateReservation($input: CreateReservationInput!) {\n  createReservation(input: $input) {\n    ...ReservationFields\n  }\n}": typeof types.CreateReservationDocument,
    "query HostBookings($first: Int, $after: String) {\n  reservations(first: $first, after: $after) {\n    totalCount\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n    edges {\n      cursor\n      node {\n        ...ReservationFields\n        guest {\n          id\n          displayName\n        }\n        property {\n          id\n          host {\n            id\n          }\n        }\n      }\n    }\n  }\n}": typeof types.HostBookingsDocument,
    "mutation Login($input: LoginInput!) {\n  login(input: $input) {\n    ...AuthPayloadFields\n  }\n}": typeof types.LoginDocument,
    "mutation Logout {\n  logout\n}": typeof types.LogoutDocument,
    "query Me {\n  me {\n    ...UserFields\n  }\n}": typeof types.MeDocument,
    "fragment MoneyFields on Money {\n  amount\n  currency\n}": typeof types.MoneyFieldsFragmentDoc,
    "query MyListings($first: Int, $after: String) {\n  me {\n    id\n    properties(first: $first, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...PropertyCard\n          createdAt\n        }\n      }\n    }\n  }\n}": typeof types.MyListingsDocument,
    "query MyNotifications($first: Int, $after: String) {\n  me {\n    id\n    notifications(first: $first, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...NotificationFields\n        }\n      }\n    }\n  }\n}": typeof types.MyNotificationsDocument,
    "query MyTrips($first: Int, $after: String) {\n  me {\n    id\n    reservations(first: $first, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...ReservationFields\n        }\n      }\n    }\n  }\n}": typeof types.MyTripsDocument,
    "fragment NotificationFields on Notification {\n  id\n  kind\n  subject\n  status\n  attempts\n  createdAt\n  sentAt\n}": typeof types.NotificationFieldsFragmentDoc,
    "fragment PropertyCard on Property {\n  id\n  title\n  status\n  maxGuests\n  bedrooms\n  amenities\n  address {\n    city\n    country\n  }\n  nightlyRate {\n    ...MoneyFields\n  }\n  category {\n    id\n    name\n  }\n  host {\n    id\n    displayName\n  }\n}": typeof types.PropertyCardFragmentDoc,
    "query PropertyPage($id: ID!, $from: Date!, $to: Date!) {\n  property(id: $id) {\n    ...PropertyCard\n    description\n    cancellationPolicy\n    createdAt\n    address {\n      line1\n      city\n      region\n      postalCode\n      country\n    }\n    bookedRanges(from: $from, to: $to) {\n      start\n      end\n    }\n  }\n}": typeof types.PropertyPageDocument,
    "query Quote($propertyId: ID!, $checkIn: Date!, $checkOut: Date!, $guests: Int!) {\n  quote(\n    propertyId: $propertyId\n    checkIn: $checkIn\n    checkOut: $checkOut\n    guests: $guests\n  ) {\n    propertyId\n    checkIn\n    checkOut\n    guests\n    nights\n    available\n    cancellationPolicy\n    nightlyRate {\n      ...MoneyFields\n    }\n    total {\n      ...MoneyFields\n    }\n  }\n}": typeof types.QuoteDocument,
    "mutation RefreshToken($refreshToken: String!) {\n  refreshToken(refreshToken: $refreshToken) {\n    ...AuthPayloadFields\n  }\n}": typeof types.RefreshTokenDocument,
    "mutation Register($input: RegisterInput!) {\n  register(input: $input) {\n    ...AuthPayloadFields\n  }\n}": typeof types.RegisterDocument,
    "fragment ReservationFields on Reservation {\n  id\n  checkIn\n  checkOut\n  guests\n  nights\n  status\n  cancellationPolicy\n  createdAt\n  cancelledAt\n  total {\n    ...MoneyFields\n  }\n  refund {\n    ...MoneyFields\n  }\n  property {\n    id\n    title\n    address {\n      city\n      country\n    }\n  }\n  payment {\n    id\n    status\n    refunded {\n      ...MoneyFields\n    }\n  }\n}": typeof types.ReservationFieldsFragmentDoc,
    "subscription ReservationStatusChanged($reservationId: ID!) {\n  reservationStatusChanged(reservationId: $reservationId) {\n    reservationId\n    status\n    occurredAt\n    reservation {\n      id\n    }\n  }\n}": typeof types.ReservationStatusChangedDocument,
    "query SearchProperties($filter: PropertyFilter, $sort: PropertySort, $first: Int, $after: String) {\n  properties(filter: $filter, sort: $sort, first: $first, after: $after) {\n    totalCount\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n    edges {\n      cursor\n      node {\n        ...PropertyCard\n      }\n    }\n  }\n}": typeof types.SearchPropertiesDocument,
    "mutation UpdatePropertyStatus($id: ID!, $status: PropertyStatus!) {\n  updateProperty(id: $id, input: {status: $status}) {\n    id\n    status\n  }\n}": typeof types.UpdatePropertyStatusDocument,
    "fragment UserFields on User {\n  id\n  displayName\n  role\n  email\n  createdAt\n}": typeof types.UserFieldsFragmentDoc,
};
const documents: Documents = {
    "fragment AuthPayloadFields on AuthPayload {\n  accessToken\n  refreshToken\n  expiresIn\n  user {\n    ...UserFields\n  }\n}": types.AuthPayloadFieldsFragmentDoc,
    "subscription BookingConfirmed {\n  bookingConfirmed {\n    reservationId\n    propertyTitle\n    checkIn\n    checkOut\n    confirmedAt\n    total {\n      ...MoneyFields\n    }\n    reservation {\n      id\n    }\n  }\n}": types.BookingConfirmedDocument,
    "mutation CancelReservation($id: ID!) {\n  cancelReservation(id: $id) {\n    ...ReservationFields\n  }\n}": types.CancelReservationDocument,
    "query Categories {\n  categories {\n    id\n    name\n    slug\n  }\n}": types.CategoriesDocument,
    "mutation CreateProperty($input: CreatePropertyInput!) {\n  createProperty(input: $input) {\n    ...PropertyCard\n    description\n    cancellationPolicy\n    createdAt\n  }\n}": types.CreatePropertyDocument,
    "mutation CreateReservation($input: CreateReservationInput!) {\n  createReservation(input: $input) {\n    ...ReservationFields\n  }\n}": types.CreateReservationDocument,
    "query HostBookings($first: Int, $after: String) {\n  reservations(first: $first, after: $after) {\n    totalCount\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n    edges {\n      cursor\n      node {\n        ...ReservationFields\n        guest {\n          id\n          displayName\n        }\n        property {\n          id\n          host {\n            id\n          }\n        }\n      }\n    }\n  }\n}": types.HostBookingsDocument,
    "mutation Login($input: LoginInput!) {\n  login(input: $input) {\n    ...AuthPayloadFields\n  }\n}": types.LoginDocument,
    "mutation Logout {\n  logout\n}": types.LogoutDocument,
    "query Me {\n  me {\n    ...UserFields\n  }\n}": types.MeDocument,
    "fragment MoneyFields on Money {\n  amount\n  currency\n}": types.MoneyFieldsFragmentDoc,
    "query MyListings($first: Int, $after: String) {\n  me {\n    id\n    properties(first: $first, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...PropertyCard\n          createdAt\n        }\n      }\n    }\n  }\n}": types.MyListingsDocument,
    "query MyNotifications($first: Int, $after: String) {\n  me {\n    id\n    notifications(first: $first, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...NotificationFields\n        }\n      }\n    }\n  }\n}": types.MyNotificationsDocument,
    "query MyTrips($first: Int, $after: String) {\n  me {\n    id\n    reservations(first: $first, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...ReservationFields\n        }\n      }\n    }\n  }\n}": types.MyTripsDocument,
    "fragment NotificationFields on Notification {\n  id\n  kind\n  subject\n  status\n  attempts\n  createdAt\n  sentAt\n}": types.NotificationFieldsFragmentDoc,
    "fragment PropertyCard on Property {\n  id\n  title\n  status\n  maxGuests\n  bedrooms\n  amenities\n  address {\n    city\n    country\n  }\n  nightlyRate {\n    ...MoneyFields\n  }\n  category {\n    id\n    name\n  }\n  host {\n    id\n    displayName\n  }\n}": types.PropertyCardFragmentDoc,
    "query PropertyPage($id: ID!, $from: Date!, $to: Date!) {\n  property(id: $id) {\n    ...PropertyCard\n    description\n    cancellationPolicy\n    createdAt\n    address {\n      line1\n      city\n      region\n      postalCode\n      country\n    }\n    bookedRanges(from: $from, to: $to) {\n      start\n      end\n    }\n  }\n}": types.PropertyPageDocument,
    "query Quote($propertyId: ID!, $checkIn: Date!, $checkOut: Date!, $guests: Int!) {\n  quote(\n    propertyId: $propertyId\n    checkIn: $checkIn\n    checkOut: $checkOut\n    guests: $guests\n  ) {\n    propertyId\n    checkIn\n    checkOut\n    guests\n    nights\n    available\n    cancellationPolicy\n    nightlyRate {\n      ...MoneyFields\n    }\n    total {\n      ...MoneyFields\n    }\n  }\n}": types.QuoteDocument,
    "mutation RefreshToken($refreshToken: String!) {\n  refreshToken(refreshToken: $refreshToken) {\n    ...AuthPayloadFields\n  }\n}": types.RefreshTokenDocument,
    "mutation Register($input: RegisterInput!) {\n  register(input: $input) {\n    ...AuthPayloadFields\n  }\n}": types.RegisterDocument,
    "fragment ReservationFields on Reservation {\n  id\n  checkIn\n  checkOut\n  guests\n  nights\n  status\n  cancellationPolicy\n  createdAt\n  cancelledAt\n  total {\n    ...MoneyFields\n  }\n  refund {\n    ...MoneyFields\n  }\n  property {\n    id\n    title\n    address {\n      city\n      country\n    }\n  }\n  payment {\n    id\n    status\n    refunded {\n      ...MoneyFields\n    }\n  }\n}": types.ReservationFieldsFragmentDoc,
    "subscription ReservationStatusChanged($reservationId: ID!) {\n  reservationStatusChanged(reservationId: $reservationId) {\n    reservationId\n    status\n    occurredAt\n    reservation {\n      id\n    }\n  }\n}": types.ReservationStatusChangedDocument,
    "query SearchProperties($filter: PropertyFilter, $sort: PropertySort, $first: Int, $after: String) {\n  properties(filter: $filter, sort: $sort, first: $first, after: $after) {\n    totalCount\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n    edges {\n      cursor\n      node {\n        ...PropertyCard\n      }\n    }\n  }\n}": types.SearchPropertiesDocument,
    "mutation UpdatePropertyStatus($id: ID!, $status: PropertyStatus!) {\n  updateProperty(id: $id, input: {status: $status}) {\n    id\n    status\n  }\n}": types.UpdatePropertyStatusDocument,
    "fragment UserFields on User {\n  id\n  displayName\n  role\n  email\n  createdAt\n}": types.UserFieldsFragmentDoc,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "fragment AuthPayloadFields on AuthPayload {\n  accessToken\n  refreshToken\n  expiresIn\n  user {\n    ...UserFields\n  }\n}"): (typeof documents)["fragment AuthPayloadFields on AuthPayload {\n  accessToken\n  refreshToken\n  expiresIn\n  user {\n    ...UserFields\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "subscription BookingConfirmed {\n  bookingConfirmed {\n    reservationId\n    propertyTitle\n    checkIn\n    checkOut\n    confirmedAt\n    total {\n      ...MoneyFields\n    }\n    reservation {\n      id\n    }\n  }\n}"): (typeof documents)["subscription BookingConfirmed {\n  bookingConfirmed {\n    reservationId\n    propertyTitle\n    checkIn\n    checkOut\n    confirmedAt\n    total {\n      ...MoneyFields\n    }\n    reservation {\n      id\n    }\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation CancelReservation($id: ID!) {\n  cancelReservation(id: $id) {\n    ...ReservationFields\n  }\n}"): (typeof documents)["mutation CancelReservation($id: ID!) {\n  cancelReservation(id: $id) {\n    ...ReservationFields\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query Categories {\n  categories {\n    id\n    name\n    slug\n  }\n}"): (typeof documents)["query Categories {\n  categories {\n    id\n    name\n    slug\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation CreateProperty($input: CreatePropertyInput!) {\n  createProperty(input: $input) {\n    ...PropertyCard\n    description\n    cancellationPolicy\n    createdAt\n  }\n}"): (typeof documents)["mutation CreateProperty($input: CreatePropertyInput!) {\n  createProperty(input: $input) {\n    ...PropertyCard\n    description\n    cancellationPolicy\n    createdAt\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation CreateReservation($input: CreateReservationInput!) {\n  createReservation(input: $input) {\n    ...ReservationFields\n  }\n}"): (typeof documents)["mutation CreateReservation($input: CreateReservationInput!) {\n  createReservation(input: $input) {\n    ...ReservationFields\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query HostBookings($first: Int, $after: String) {\n  reservations(first: $first, after: $after) {\n    totalCount\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n    edges {\n      cursor\n      node {\n        ...ReservationFields\n        guest {\n          id\n          displayName\n        }\n        property {\n          id\n          host {\n            id\n          }\n        }\n      }\n    }\n  }\n}"): (typeof documents)["query HostBookings($first: Int, $after: String) {\n  reservations(first: $first, after: $after) {\n    totalCount\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n    edges {\n      cursor\n      node {\n        ...ReservationFields\n        guest {\n          id\n          displayName\n        }\n        property {\n          id\n          host {\n            id\n          }\n        }\n      }\n    }\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation Login($input: LoginInput!) {\n  login(input: $input) {\n    ...AuthPayloadFields\n  }\n}"): (typeof documents)["mutation Login($input: LoginInput!) {\n  login(input: $input) {\n    ...AuthPayloadFields\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation Logout {\n  logout\n}"): (typeof documents)["mutation Logout {\n  logout\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query Me {\n  me {\n    ...UserFields\n  }\n}"): (typeof documents)["query Me {\n  me {\n    ...UserFields\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "fragment MoneyFields on Money {\n  amount\n  currency\n}"): (typeof documents)["fragment MoneyFields on Money {\n  amount\n  currency\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query MyListings($first: Int, $after: String) {\n  me {\n    id\n    properties(first: $first, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...PropertyCard\n          createdAt\n        }\n      }\n    }\n  }\n}"): (typeof documents)["query MyListings($first: Int, $after: String) {\n  me {\n    id\n    properties(first: $first, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...PropertyCard\n          createdAt\n        }\n      }\n    }\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query MyNotifications($first: Int, $after: String) {\n  me {\n    id\n    notifications(first: $first, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...NotificationFields\n        }\n      }\n    }\n  }\n}"): (typeof documents)["query MyNotifications($first: Int, $after: String) {\n  me {\n    id\n    notifications(first: $first, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...NotificationFields\n        }\n      }\n    }\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query MyTrips($first: Int, $after: String) {\n  me {\n    id\n    reservations(first: $first, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...ReservationFields\n        }\n      }\n    }\n  }\n}"): (typeof documents)["query MyTrips($first: Int, $after: String) {\n  me {\n    id\n    reservations(first: $first, after: $after) {\n      totalCount\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n      edges {\n        cursor\n        node {\n          ...ReservationFields\n        }\n      }\n    }\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "fragment NotificationFields on Notification {\n  id\n  kind\n  subject\n  status\n  attempts\n  createdAt\n  sentAt\n}"): (typeof documents)["fragment NotificationFields on Notification {\n  id\n  kind\n  subject\n  status\n  attempts\n  createdAt\n  sentAt\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "fragment PropertyCard on Property {\n  id\n  title\n  status\n  maxGuests\n  bedrooms\n  amenities\n  address {\n    city\n    country\n  }\n  nightlyRate {\n    ...MoneyFields\n  }\n  category {\n    id\n    name\n  }\n  host {\n    id\n    displayName\n  }\n}"): (typeof documents)["fragment PropertyCard on Property {\n  id\n  title\n  status\n  maxGuests\n  bedrooms\n  amenities\n  address {\n    city\n    country\n  }\n  nightlyRate {\n    ...MoneyFields\n  }\n  category {\n    id\n    name\n  }\n  host {\n    id\n    displayName\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query PropertyPage($id: ID!, $from: Date!, $to: Date!) {\n  property(id: $id) {\n    ...PropertyCard\n    description\n    cancellationPolicy\n    createdAt\n    address {\n      line1\n      city\n      region\n      postalCode\n      country\n    }\n    bookedRanges(from: $from, to: $to) {\n      start\n      end\n    }\n  }\n}"): (typeof documents)["query PropertyPage($id: ID!, $from: Date!, $to: Date!) {\n  property(id: $id) {\n    ...PropertyCard\n    description\n    cancellationPolicy\n    createdAt\n    address {\n      line1\n      city\n      region\n      postalCode\n      country\n    }\n    bookedRanges(from: $from, to: $to) {\n      start\n      end\n    }\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query Quote($propertyId: ID!, $checkIn: Date!, $checkOut: Date!, $guests: Int!) {\n  quote(\n    propertyId: $propertyId\n    checkIn: $checkIn\n    checkOut: $checkOut\n    guests: $guests\n  ) {\n    propertyId\n    checkIn\n    checkOut\n    guests\n    nights\n    available\n    cancellationPolicy\n    nightlyRate {\n      ...MoneyFields\n    }\n    total {\n      ...MoneyFields\n    }\n  }\n}"): (typeof documents)["query Quote($propertyId: ID!, $checkIn: Date!, $checkOut: Date!, $guests: Int!) {\n  quote(\n    propertyId: $propertyId\n    checkIn: $checkIn\n    checkOut: $checkOut\n    guests: $guests\n  ) {\n    propertyId\n    checkIn\n    checkOut\n    guests\n    nights\n    available\n    cancellationPolicy\n    nightlyRate {\n      ...MoneyFields\n    }\n    total {\n      ...MoneyFields\n    }\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation RefreshToken($refreshToken: String!) {\n  refreshToken(refreshToken: $refreshToken) {\n    ...AuthPayloadFields\n  }\n}"): (typeof documents)["mutation RefreshToken($refreshToken: String!) {\n  refreshToken(refreshToken: $refreshToken) {\n    ...AuthPayloadFields\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation Register($input: RegisterInput!) {\n  register(input: $input) {\n    ...AuthPayloadFields\n  }\n}"): (typeof documents)["mutation Register($input: RegisterInput!) {\n  register(input: $input) {\n    ...AuthPayloadFields\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "fragment ReservationFields on Reservation {\n  id\n  checkIn\n  checkOut\n  guests\n  nights\n  status\n  cancellationPolicy\n  createdAt\n  cancelledAt\n  total {\n    ...MoneyFields\n  }\n  refund {\n    ...MoneyFields\n  }\n  property {\n    id\n    title\n    address {\n      city\n      country\n    }\n  }\n  payment {\n    id\n    status\n    refunded {\n      ...MoneyFields\n    }\n  }\n}"): (typeof documents)["fragment ReservationFields on Reservation {\n  id\n  checkIn\n  checkOut\n  guests\n  nights\n  status\n  cancellationPolicy\n  createdAt\n  cancelledAt\n  total {\n    ...MoneyFields\n  }\n  refund {\n    ...MoneyFields\n  }\n  property {\n    id\n    title\n    address {\n      city\n      country\n    }\n  }\n  payment {\n    id\n    status\n    refunded {\n      ...MoneyFields\n    }\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "subscription ReservationStatusChanged($reservationId: ID!) {\n  reservationStatusChanged(reservationId: $reservationId) {\n    reservationId\n    status\n    occurredAt\n    reservation {\n      id\n    }\n  }\n}"): (typeof documents)["subscription ReservationStatusChanged($reservationId: ID!) {\n  reservationStatusChanged(reservationId: $reservationId) {\n    reservationId\n    status\n    occurredAt\n    reservation {\n      id\n    }\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query SearchProperties($filter: PropertyFilter, $sort: PropertySort, $first: Int, $after: String) {\n  properties(filter: $filter, sort: $sort, first: $first, after: $after) {\n    totalCount\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n    edges {\n      cursor\n      node {\n        ...PropertyCard\n      }\n    }\n  }\n}"): (typeof documents)["query SearchProperties($filter: PropertyFilter, $sort: PropertySort, $first: Int, $after: String) {\n  properties(filter: $filter, sort: $sort, first: $first, after: $after) {\n    totalCount\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n    edges {\n      cursor\n      node {\n        ...PropertyCard\n      }\n    }\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation UpdatePropertyStatus($id: ID!, $status: PropertyStatus!) {\n  updateProperty(id: $id, input: {status: $status}) {\n    id\n    status\n  }\n}"): (typeof documents)["mutation UpdatePropertyStatus($id: ID!, $status: PropertyStatus!) {\n  updateProperty(id: $id, input: {status: $status}) {\n    id\n    status\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "fragment UserFields on User {\n  id\n  displayName\n  role\n  email\n  createdAt\n}"): (typeof documents)["fragment UserFields on User {\n  id\n  displayName\n  role\n  email\n  createdAt\n}"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;