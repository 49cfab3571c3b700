/* `untangle data colorize`: a grey data set painted with a random hue per image, the hue kept
 * as the per-image attribute "hue" (models/cmivae_data.h), for CMI-VAE's hue feature. */
#include <string.h>

#include "cli.h"
#include "cmivae_data.h"
#include "commands.h"

#define CMD "data colorize"

void help_data_colorize(FILE *out) {
  fprintf(out,
          "  untangle data colorize FILE --hue uniform [--seed X] -o OUT\n"
          "      Copies the grey data set FILE with every image painted in one hue, drawn uniformly\n"
          "      in [0, 360) degrees per image from the seed: a pixel of grey level v becomes\n"
          "      v (0.5 + 0.5 cos(hue - 120 k)) in channel k (red, green, blue), so black stays\n"
          "      black and the foreground takes the colour. The hue is stored as the attribute\n"
          "      'hue' (degrees, the angle of the colour in the opponent-colour plane, which is\n"
          "      what 'untangle eval' of a CMI-VAE run measures). Classes, contents and domains\n"
          "      are kept. A colour set is refused.\n"
          "          --hue uniform    how hues are drawn (required; uniform is the one way)\n"
          "          --seed X         the hues' seed (default 1)\n");
}

int data_colorize(int argc, char **argv) {
  static const struct option longs[] = {
    { "hue", required_argument, NULL, 'H' }, { "seed", required_argument, NULL, 'S' },
    { "out", required_argument, NULL, 'o' }, { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  const char *out = NULL, *hue = NULL;
  uint64_t seed = 1;
  cli_getopt_reset();
  opterr = 0;
  int rc = CLI_OK;
  for (int c; rc == CLI_OK && (c = getopt_long(argc, argv, ":o:h", longs, NULL)) != -1;) {
    switch (c) {
    case 'H': hue = optarg; break;
    case 'S': rc = cli_parse_u64(CMD, "--seed", optarg, UINT64_MAX, &seed); break;
    case 'o': out = optarg; break;
    case 'h':
      printf("Usage:\n");
      help_data_colorize(stdout);
      return CLI_OK;
    default: return cli_option_error(CMD, c, argv);
    }
  }
  if (rc != CLI_OK) return rc;
  if (argc - optind != 1) return cli_usage_error(CMD, "expects one data set file, got %d", argc - optind);
  if (!hue) return cli_usage_error(CMD, "needs --hue uniform");
  if (strcmp(hue, "uniform") != 0) return cli_usage_error(CMD, "--hue expects uniform, not '%s'", hue);
  if (!out || !*out) return cli_usage_error(CMD, "needs the output file: -o OUT");
  ut_dataset *ds = ut_dataset_open(argv[optind]);
  if (!ds || cmivae_colorize(ds, seed, out) != UT_OK) {
    fprintf(stderr, "untangle " CMD ": %s\n", ut_last_error());
    ut_dataset_close(ds);
    return CLI_FAILED;
  }
  printf("wrote %s: %d images of %d x %d RGB, %d classes, attribute hue uniform in [0, 360) (seed %llu)\n", out,
         ut_dataset_count(ds), ut_dataset_height(ds), ut_dataset_width(ds), ut_dataset_n_classes(ds),
         (unsigned long long)seed);
  ut_dataset_close(ds);
  return CLI_OK;
}
